package mtls_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/internal/testpki"
)

func TestLoadRefusesUnsafeOrWrongFiles(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "cluster-ca")
	other := testpki.NewCA(t, "other-ca")
	good := ca.Issue(t, "good", "127.0.0.1")
	if _, err := mtls.Load(good); err != nil {
		t.Fatalf("good files: %v", err)
	}
	foreign := other.Issue(t, "foreign", "127.0.0.1")
	second := ca.Issue(t, "second", "127.0.0.1")

	dir := t.TempDir()
	copyTo := func(src, name string, mode os.FileMode) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	readableKey := copyTo(good.Key, "readable.key", 0o644)
	groupWritableCert := copyTo(good.Cert, "gw.pem", 0o664)
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(good.Key, link); err != nil {
		t.Fatal(err)
	}
	strangerKey := copyTo(good.Key, "stranger.key", 0o600)
	if os.Geteuid() == 0 {
		if err := os.Chown(strangerKey, 4242, 4242); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name  string
		files mtls.Files
		want  error
	}{
		{"key readable by others", mtls.Files{CA: good.CA, Cert: good.Cert, Key: readableKey}, mtls.ErrUnsafeFile},
		{"certificate writable by group", mtls.Files{CA: good.CA, Cert: groupWritableCert, Key: good.Key}, mtls.ErrUnsafeFile},
		{"key behind a symlink", mtls.Files{CA: good.CA, Cert: good.Cert, Key: link}, mtls.ErrUnsafeFile},
		{"directory as CA", mtls.Files{CA: dir, Cert: good.Cert, Key: good.Key}, mtls.ErrUnsafeFile},
		{"missing key name", mtls.Files{CA: good.CA, Cert: good.Cert}, mtls.ErrUnsafeFile},
		{"certificate from another CA", mtls.Files{CA: good.CA, Cert: foreign.Cert, Key: foreign.Key}, mtls.ErrBadCertificate},
		{"key of another certificate", mtls.Files{CA: good.CA, Cert: good.Cert, Key: second.Key}, mtls.ErrBadCertificate},
		{"CA file without a certificate", mtls.Files{CA: good.Key, Cert: good.Cert, Key: good.Key}, mtls.ErrBadCertificate},
	}
	if os.Geteuid() == 0 {
		cases = append(cases, struct {
			name  string
			files mtls.Files
			want  error
		}{"key owned by another user", mtls.Files{CA: good.CA, Cert: good.Cert, Key: strangerKey}, mtls.ErrUnsafeFile})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := mtls.Load(c.files)
			if !errors.Is(err, c.want) {
				t.Fatalf("Load = %v, want %v", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error quotes key material: %v", err)
			}
		})
	}
}

func TestWriteNewNeverOverwritesAndSetsTheMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := mtls.WriteNew(dir, "k.key", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteNew(dir, "k.key", []byte("y"), 0o600); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second write: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, "k.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", st.Mode(), err)
	}
	if err := os.Symlink(filepath.Join(dir, "k.key"), filepath.Join(dir, "l.key")); err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteNew(dir, "l.key", []byte("z"), 0o600); err == nil {
		t.Fatal("wrote through a symlink")
	}
}

func TestAuthorityRoundTripsThroughPEM(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "cluster-ca")
	keyPEM, err := ca.Authority().KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := mtls.ParseAuthority(ca.Authority().CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.CertPEM(), ca.Authority().CertPEM()) {
		t.Fatal("CA certificate changed")
	}
	other := testpki.NewCA(t, "other")
	otherKey, _ := other.Authority().KeyPEM()
	if _, err := mtls.ParseAuthority(ca.Authority().CertPEM(), otherKey); !errors.Is(err, mtls.ErrBadCertificate) {
		t.Fatalf("mismatched CA key: %v", err)
	}
}

func TestTransportNeedsAnExplicitChoice(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "cluster-ca")
	m := ca.Material(t, "n", "127.0.0.1")
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)

	if _, err := (mtls.Transport{}).RemoteOptions(log); !errors.Is(err, mtls.ErrNoTransportSecurity) {
		t.Fatalf("no choice: %v", err)
	}
	if _, err := (mtls.Transport{Material: m, Insecure: true}).RemoteOptions(log); !errors.Is(err, mtls.ErrNoTransportSecurity) {
		t.Fatalf("both: %v", err)
	}
	if opts, err := (mtls.Transport{Material: m}).RemoteOptions(log); err != nil || len(opts) != 2 || buf.Len() != 0 {
		t.Fatalf("TLS: %d options, %v, log %q", len(opts), err, buf.String())
	}
	if _, err := (mtls.Transport{Insecure: true}).RemoteOptions(log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "level=warning") || !strings.Contains(buf.String(), "plain text") {
		t.Fatalf("insecure start did not warn: %q", buf.String())
	}
}
