package shim_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// pemSentinel is a PEM-shaped secret (multi-line, with spaces).
const pemSentinel = "-----BEGIN PRIVATE KEY-----\nsentinel-PEM-9b2e77\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"

// Secrets reach the guest's environment and nothing else: not the shim's
// environment or command line, not the guest's command line, not the shim's
// log, not the console (unless the guest prints them), not exit.json. The
// guest's environment is the spec's, not the shim's. The same holds for a
// guest started through the confining init, which receives the environment
// on its plan socket.
func TestSecretsReachOnlyTheGuest(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testSecretsReachOnlyTheGuest(t, false) })
	t.Run("confined", func(t *testing.T) { testSecretsReachOnlyTheGuest(t, true) })
}

func testSecretsReachOnlyTheGuest(t *testing.T, confined bool) {
	dir := t.TempDir()
	secretOut, keyOut, envOut := filepath.Join(dir, "secret.out"), filepath.Join(dir, "key.out"), filepath.Join(dir, "env.out")
	script := `echo "$MY_SECRET" > ` + secretOut + `; printf %s "$MY_KEY" > ` + keyOut + `; env > ` + envOut + `; echo console-line; exec sleep 30`
	spec := newSpec(dir, "secretive", "sh", "-c", script)
	spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, "PLAIN_VAR=plain")
	spec.Secrets = []messages.SecretVar{
		{Name: "MY_SECRET", Value: messages.NewSecret(secretSentinel)},
		{Name: "MY_KEY", Value: messages.NewSecret(pemSentinel)},
	}
	if confined {
		spec.Security.MaxOpenFiles = 1024 // any setting that needs the init
	}
	spec.Transport = filepath.Join(dir, "box.sock")
	r := startShim(t, dir, spec, launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	waitFor(t, "the guest to exec sleep", func() bool {
		kids := childrenOf(r.pid())
		return len(kids) == 1 && strings.HasPrefix(procFile(kids[0], "cmdline"), "sleep\x00")
	})
	guest := r.guestPID()

	if got := readFile(t, secretOut); got != secretSentinel+"\n" {
		t.Errorf("guest saw MY_SECRET = %q, want the secret", got)
	}
	if got := readFile(t, keyOut); got != pemSentinel {
		t.Errorf("guest saw MY_KEY = %q, want the PEM", got)
	}
	env := readFile(t, envOut)
	if !strings.Contains(env, "PLAIN_VAR=plain\n") {
		t.Errorf("guest env lacks the spec's variable:\n%s", env)
	}
	if !strings.Contains(env, "BOXSUP_TRANSPORT="+spec.Transport+"\n") {
		t.Errorf("guest env lacks BOXSUP_TRANSPORT:\n%s", env)
	}
	if strings.Contains(env, shimMarkerEnv) {
		t.Errorf("guest inherited the shim's own environment:\n%s", env)
	}
	if !strings.Contains(procFile(guest, "environ"), secretSentinel) {
		t.Error("positive control failed: the secret is not in the guest's /proc environ")
	}

	leaks := map[string]string{
		"shim environ":  procFile(r.pid(), "environ"),
		"shim cmdline":  procFile(r.pid(), "cmdline"),
		"guest cmdline": procFile(guest, "cmdline"),
	}
	if leaks["shim environ"] == "" || leaks["shim cmdline"] == "" {
		t.Fatal("could not read the shim's /proc files")
	}

	if err := syscall.Kill(r.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r.wait()
	leaks["shim log"] = r.log()
	leaks["console"] = readFile(t, spec.ConsoleOutput)
	leaks["exit.json"] = readFile(t, spec.ExitFile)
	for where, text := range leaks {
		for _, sentinel := range []string{secretSentinel, "sentinel-PEM-9b2e77"} {
			if strings.Contains(text, sentinel) {
				t.Errorf("%s contains a secret sentinel %q", where, sentinel)
			}
		}
	}
	if !strings.Contains(leaks["console"], "console-line") {
		t.Errorf("console lacks the guest's output: %q", leaks["console"])
	}
}
