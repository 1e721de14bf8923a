package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
)

// TestForegroundRunExitsWithTheBoxCode: console output reaches stdout and
// boxsup exits with the guest's code, or 128+N for signal N.
func TestForegroundRunExitsWithTheBoxCode(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		r := e.boxsup("run", "--name", "seven", "-e", markEnv, "--", "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
		if r.code != 7 {
			t.Fatalf("run exiting 7: %s", r)
		}
		if !strings.Contains(r.stdout, "to-stdout\n") || !strings.Contains(r.stdout, "to-stderr\n") {
			t.Fatalf("run: the console output did not reach stdout: %s", r)
		}
		if row := e.ps()["seven"]; row.State != "exited" || row.ExitCode == nil || *row.ExitCode != 7 {
			t.Fatalf("ps after the run: %+v", row)
		}

		r = e.boxsup("run", "--rm", "-e", markEnv, "--", "/bin/sh", "-c", "kill -TERM $$")
		if r.code != 128+int(syscall.SIGTERM) {
			t.Fatalf("run of a guest that dies of SIGTERM: %s; want exit 143", r)
		}
		if rows := e.ps(); len(rows) != 1 {
			t.Fatalf("--rm left the box behind: %v", rows)
		}

		r = e.boxsup("run", "--name", "ok", "-e", markEnv, "--", "/bin/true")
		if r.code != 0 {
			t.Fatalf("run /bin/true: %s", r)
		}
		r = e.boxsup("run", "--rm", "-e", markEnv, "--", "/nonexistent/program")
		if r.code != 1 || !strings.Contains(r.stderr, "box failed to start") {
			t.Fatalf("run of a missing program: %s; want exit 1 and a start failure", r)
		}
		if rows := e.ps(); len(rows) != 2 {
			t.Fatalf("--rm left the box that failed to start behind: %v", rows)
		}
	})
}

// TestForegroundRunStopsOnSIGINT: Ctrl-C stops the box gracefully and
// boxsup exits with its code; meanwhile other commands reach the home
// through the run's own control socket (local) or the supervisor's.
func TestForegroundRunStopsOnSIGINT(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, boxsupBin, "--home", e.home, "run", "--name", "fg", "-e", markEnv,
			"--", "/bin/sh", "-c", "echo up; exec sleep 60")
		var stdout, stderr testutil.SyncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		eventually(t, "the foreground box to print", func() bool { return strings.Contains(stdout.String(), "up\n") })
		if row := e.ps()["fg"]; row.State != "running" {
			t.Fatalf("ps during the foreground run: %+v", row)
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		err := <-done
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 143 {
			t.Fatalf("boxsup run after SIGINT: %v (stderr %q); want exit 143 (the guest's SIGTERM)", err, stderr.String())
		}
		if row := e.ps()["fg"]; row.State != "exited" || row.Signal != "SIGTERM" {
			t.Fatalf("ps after SIGINT: %+v", row)
		}
	})
}

// TestSecretsNeverShown: a --secret-env value reaches the guest and nothing
// else: not boxsup's output at trace level, not ps, logs or metrics, not the
// supervisor's log, not the shim's argv or environment.
func TestSecretsNeverShown(t *testing.T) {
	const sentinel = "s3ntinel-VALUE-e2e-7f3a"
	e := newSupervisedEnv(t, "--log-level", "trace")
	out := filepath.Join(t.TempDir(), "guest-saw")
	secretEnv := []string{"E2E_TOKEN=" + sentinel}
	// KEY alone: the value comes from boxsup's environment, not its argv.
	r := runBoxsup(t, secretEnv, "--home", e.home, "--log-level", "trace", "run", "-d", "--name", "sec",
		"--secret-env", "E2E_TOKEN", "-e", markEnv, "--", "/bin/sh", "-c", `printf %s "$E2E_TOKEN" > `+out+`; exec sleep 60`)
	if r.code != 0 {
		t.Fatalf("run -d with a secret: %s", r)
	}
	eventually(t, "the guest to write its secret", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == sentinel
	})
	pid := e.ps()["sec"].PID
	outputs := map[string]string{"run -d": r.stdout + r.stderr}
	for _, args := range [][]string{{"ps"}, {"ps", "-a", "--format", "json"}, {"logs", "sec"}, {"metrics", "--format", "json"}} {
		rr := runBoxsup(t, nil, append([]string{"--home", e.home, "--log-level", "trace"}, args...)...)
		outputs[strings.Join(args, " ")] = rr.stdout + rr.stderr
	}
	outputs["supervise log"] = e.sup.log.String()
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), f))
		if err != nil {
			t.Fatal(err)
		}
		outputs["shim "+f] = string(b)
	}
	for name, text := range outputs {
		if strings.Contains(text, sentinel) {
			t.Errorf("the secret leaked into %s", name)
		}
	}
	if !strings.Contains(e.sup.log.String(), `"level":"trace"`) && !strings.Contains(e.sup.log.String(), `"level":"debug"`) {
		t.Error("the supervisor logged nothing below info: the leak check would prove little")
	}
	// spec.json holds it (the shim needs it) but only its owner may read it.
	spec := filepath.Join(e.home, "boxes", "sec", "spec.json")
	if fi, err := os.Stat(spec); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("spec.json: %v %v, want mode 0600", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(spec); !bytes.Contains(b, []byte(sentinel)) {
		t.Error("spec.json does not hold the secret: the sentinel check above proves nothing")
	}
}
