package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/boxsup/boxsup/cluster/mtls"
)

func TestClusterCertsMakesUsableFilesAndNeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := execute(append([]string{"cluster", "certs", "--dir", dir}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("--node", "a=127.0.0.1,a.example", "--node", "ops=10.0.0.9"); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	m, err := mtls.Load(mtls.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "a.pem"), Key: filepath.Join(dir, "a.key")})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Leaf().VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Leaf().VerifyHostname("a.example"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.key", "a.key", "ops.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v", f, st.Mode(), err)
		}
	}
	// A node added later is signed by the same CA.
	if code, out := run("--node", "b=127.0.0.2"); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, err := mtls.Load(mtls.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "b.pem"), Key: filepath.Join(dir, "b.key")}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "a.key"))
	if code, _ := run("--node", "a=127.0.0.1"); code == 0 {
		t.Fatal("re-issuing an existing name succeeded")
	}
	after, _ := os.ReadFile(filepath.Join(dir, "a.key"))
	if !bytes.Equal(before, after) {
		t.Fatal("a key was overwritten")
	}
	for _, bad := range [][]string{{"--node", "nohost"}, {"--node", "../x=1.2.3.4"}, {}, {"--node", "ca=1.2.3.4"}, {"--node", "c=1.2.3.4", "--node", "c=1.2.3.5"}} {
		if code, _ := run(bad...); code != exitUsage {
			t.Fatalf("%v: exit %d, want usage error", bad, code)
		}
	}
}
