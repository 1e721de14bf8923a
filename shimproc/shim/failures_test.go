package shim_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// A guest that cannot be executed: no ready byte (EOF), exit 127, and an
// exit record that says why. The ready socket, if any, is cleaned up.
func TestExecFailure(t *testing.T) {
	cases := []struct {
		name  string
		setup func(dir string, spec *messages.InstanceSpec)
		want  string // in the reason
	}{
		{"missing absolute path", func(dir string, s *messages.InstanceSpec) {
			s.GuestEntrypoint.Executable = filepath.Join(dir, "no-such-guest")
		}, "no such file or directory"},
		{"not on PATH", func(dir string, s *messages.InstanceSpec) {
			s.GuestEntrypoint.Executable = "boxsup-no-such-command"
		}, "not found in the guest's PATH"},
		{"guest PATH wins over the shim's", func(dir string, s *messages.InstanceSpec) {
			s.GuestEntrypoint.Executable = "sleep"
			s.GuestEntrypoint.Env = []string{"PATH=" + dir}
		}, "not found in the guest's PATH"},
		{"not executable", func(dir string, s *messages.InstanceSpec) {
			p := filepath.Join(dir, "plain-file")
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s.GuestEntrypoint.Executable = p
		}, "permission denied"},
		{"missing work_dir", func(dir string, s *messages.InstanceSpec) {
			s.GuestEntrypoint.WorkDir = filepath.Join(dir, "no-such-dir")
		}, "no-such-dir: no such file or directory"}, // the directory is named, not the executable
		{"with a ready socket", func(dir string, s *messages.InstanceSpec) {
			s.GuestEntrypoint.Executable = filepath.Join(dir, "no-such-guest")
			s.ReadyTransport = filepath.Join(dir, "ready.sock")
		}, "no such file or directory"},
	}
	for _, tc := range cases {
		for _, confined := range []bool{false, true} {
			name := tc.name
			if confined {
				// The same failures through the confining init (an rlimit
				// is enough to need it; root is not).
				name += " (confined)"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				spec := newSpec(dir, "broken", "sleep", "30")
				tc.setup(dir, &spec)
				if confined {
					spec.Security.MaxOpenFiles = 256
				}
				r := startShim(t, dir, spec, launch{})
				if r.readReady() {
					t.Fatal("ready byte for a guest that could not be executed")
				}
				if code := r.wait(); code != 127 {
					t.Errorf("exit code = %d, want 127; log:\n%s", code, r.log())
				}
				rec := r.exitRecord()
				if rec.ExitCode != 127 || rec.Signal != "" || !strings.HasPrefix(rec.Reason, "exec failed: ") || !strings.Contains(rec.Reason, tc.want) {
					t.Errorf("exit record = %+v, want 127 and \"exec failed: ...%s...\"", rec, tc.want)
				}
				if spec.ReadyTransport != "" && fileExists(spec.ReadyTransport) {
					t.Error("the ready socket was left behind")
				}
			})
		}
	}
}

// secretSentinel is a secret value that must never appear outside the
// guest's own environment.
const secretSentinel = "sentinel-SECRET-5f0c1a"

// Bad command lines and bad specs: exit 125, EOF on the ready pipe, the
// guest never runs, and nothing secret reaches stderr or exit.json. When the
// spec names an exit file, the exit record is written anyway.
func TestBadInput(t *testing.T) {
	type input struct {
		args  []string
		stdin []byte
	}
	cases := []struct {
		name     string
		make     func(spec messages.InstanceSpec) input
		wantExit bool   // exit.json expected
		want     string // in stderr (and in the reason when wantExit)
	}{
		{"no arguments", func(s messages.InstanceSpec) input { return input{args: []string{}} }, true, "usage: "},
		{"flag without value", func(s messages.InstanceSpec) input { return input{args: []string{"--box-id"}} }, true, "usage: "},
		{"flag=value form", func(s messages.InstanceSpec) input { return input{args: []string{"--box-id=bad"}} }, true, "usage: "},
		{"extra argument", func(s messages.InstanceSpec) input { return input{args: []string{"--box-id", "bad", "--detach"}} }, true, "usage: "},
		{"box id mismatch", func(s messages.InstanceSpec) input { return input{args: []string{"--box-id", "other"}} }, true, `does not match --box-id "other"`},
		{"empty stdin", func(s messages.InstanceSpec) input { return input{stdin: []byte{}} }, false, "bad spec: no spec on stdin"},
		{"malformed JSON after a secret", func(s messages.InstanceSpec) input {
			return input{stdin: []byte(`{"secrets":[{"name":"X","value":"` + secretSentinel + `"}] ` + secretSentinel)}
		}, false, "bad spec: malformed JSON at byte offset"},
		{"wrong type", func(s messages.InstanceSpec) input {
			return input{stdin: []byte(`{"box_id":"bad","secrets":[{"name":"X","value":"` + secretSentinel + `"}],"cpus":"` + secretSentinel + `"}`)}
		}, false, `bad spec: field "cpus"`},
		{"no executable", func(s messages.InstanceSpec) input {
			s.GuestEntrypoint.Executable = ""
			return input{stdin: mustJSON(t, s)}
		}, true, "guest_entrypoint.executable"},
		{"secret with NUL", func(s messages.InstanceSpec) input {
			s.Secrets = append(s.Secrets, messages.SecretVar{Name: "NUL_SECRET", Value: messages.NewSecret(secretSentinel + "\x00")})
			return input{stdin: mustJSON(t, s)}
		}, true, "secrets[1].value: contains NUL"},
		{"other engine", func(s messages.InstanceSpec) input {
			s.Engine = messages.EngineLibkrun
			return input{stdin: mustJSON(t, s)}
		}, true, `engine "libkrun" is not handled`},
		{"future version", func(s messages.InstanceSpec) input {
			s.Version = 2
			return input{stdin: mustJSON(t, s)}
		}, true, "version: 2 is not supported"},
		{"relative exit file", func(s messages.InstanceSpec) input {
			s.ExitFile = "exit.json"
			return input{stdin: mustJSON(t, s)}
		}, false, "exit_file"},
		{"oversized spec", func(s messages.InstanceSpec) input {
			return input{stdin: bytes.Repeat([]byte(" "), 16<<20+1)}
		}, false, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(dir, "ran")
			spec := newSpec(dir, "bad", "touch", marker)
			spec.Secrets = []messages.SecretVar{{Name: "MY_SECRET", Value: messages.NewSecret(secretSentinel)}}
			in := tc.make(spec)
			r := startShim(t, dir, spec, launch{args: in.args, stdin: in.stdin})
			if r.readReady() {
				t.Fatal("ready byte for bad input")
			}
			if code := r.wait(); code != 125 {
				t.Errorf("exit code = %d, want 125; log:\n%s", code, r.log())
			}
			log := r.log()
			if !strings.Contains(log, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, log)
			}
			if strings.Contains(log, secretSentinel) {
				t.Errorf("stderr holds the secret:\n%s", log)
			}
			if fileExists(marker) {
				t.Error("the guest ran")
			}
			if !tc.wantExit {
				if fileExists(spec.ExitFile) {
					t.Errorf("exit.json written though the spec's exit_file was not known")
				}
				return
			}
			rec := r.exitRecord()
			if rec.ExitCode != 125 || !strings.Contains(rec.Reason, tc.want) {
				t.Errorf("exit record = %+v, want 125 and a reason with %q", rec, tc.want)
			}
			if raw := readFile(t, spec.ExitFile); strings.Contains(raw, secretSentinel) {
				t.Errorf("exit.json holds the secret: %s", raw)
			}
		})
	}
}

// Something other than a socket at ready_transport is refused and left alone.
func TestReadyTransportNotASocket(t *testing.T) {
	dir := t.TempDir()
	spec := newSpec(dir, "notsock", "sleep", "30")
	spec.ReadyTransport = filepath.Join(dir, "ready.sock")
	if err := os.WriteFile(spec.ReadyTransport, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startShim(t, dir, spec, launch{})
	if r.readReady() {
		t.Fatal("ready byte")
	}
	if code := r.wait(); code != 125 {
		t.Errorf("exit code = %d, want 125", code)
	}
	if rec := r.exitRecord(); !strings.Contains(rec.Reason, "not a socket") {
		t.Errorf("reason = %q, want it to say not a socket", rec.Reason)
	}
	if got := readFile(t, spec.ReadyTransport); got != "precious" {
		t.Errorf("the file at ready_transport was changed: %q", got)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Set-up failures after a valid spec, before the guest starts: exit 125, no
// ready byte, a "setup failed" or "usage" reason, and the guest never runs.
func TestSetupFailures(t *testing.T) {
	cases := []struct {
		name  string
		setup func(dir string, s *messages.InstanceSpec) []string // returns extra shim env
		want  string
	}{
		{"console in a missing directory", func(dir string, s *messages.InstanceSpec) []string {
			s.ConsoleOutput = filepath.Join(dir, "missing", "console.log")
			return nil
		}, "setup failed: console_output"},
		{"ready socket path too long", func(dir string, s *messages.InstanceSpec) []string {
			s.ReadyTransport = filepath.Join(dir, strings.Repeat("x", 120)+".sock")
			return nil
		}, "setup failed: ready_transport: path is"},
		{"malformed keepalive grace", func(dir string, s *messages.InstanceSpec) []string {
			return []string{"BOXSUP_SHIM_KEEPALIVE_GRACE=soon"}
		}, "usage: BOXSUP_SHIM_KEEPALIVE_GRACE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(dir, "ran")
			spec := newSpec(dir, "setup", "touch", marker)
			env := tc.setup(dir, &spec)
			r := startShim(t, dir, spec, launch{env: env})
			if r.readReady() {
				t.Fatal("ready byte")
			}
			if code := r.wait(); code != 125 {
				t.Errorf("exit code = %d, want 125; log:\n%s", code, r.log())
			}
			if rec := r.exitRecord(); rec.ExitCode != 125 || !strings.HasPrefix(rec.Reason, tc.want) {
				t.Errorf("exit record = %+v, want 125 and a reason starting %q", rec, tc.want)
			}
			if fileExists(marker) {
				t.Error("the guest ran")
			}
		})
	}
}
