package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeBoxesFile writes a boxes file (mode 0600) into a fresh directory.
func writeBoxesFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "boxes.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const applyTestFile = `boxes:
  db:
    command: [/bin/sleep, "1000"]
    secrets:
      DB_PASSWORD: {env: BOXSUP_TEST_DB_PASSWORD}
  web:
    command: [/bin/sleep, "1000"]
    depends_on: [db]
    labels: {app: web}
`

// TestApplyShowsThePlanAndRefusesWhatItCannotRecord: today's supervisor
// stores no labels, so apply prints the plan and refuses, creating nothing,
// and never prints a secret value.
func TestApplyShowsThePlanAndRefusesWhatItCannotRecord(t *testing.T) {
	e := newEnv(t)
	path := writeBoxesFile(t, applyTestFile)
	const secret = "pw-7731-do-not-print"
	for _, args := range [][]string{{"--dry-run"}, nil} {
		r := runBoxsup(t, []string{"BOXSUP_TEST_DB_PASSWORD=" + secret},
			append([]string{"--home", e.home, "--log-level", "trace", "apply", "-f", path}, args...)...)
		if r.code != 1 {
			t.Fatalf("apply %v: %s", args, r)
		}
		for _, want := range []string{
			`# box "db" will be created (wave 1)`,
			`DB_PASSWORD = (sensitive, from env BOXSUP_TEST_DB_PASSWORD)`,
			`# box "web" will be created (wave 2)`,
			"Plan: 2 to create, 0 to replace",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("apply %v: the plan lacks %q: %s", args, want, r)
			}
		}
		if !strings.Contains(r.stderr, "cannot store box labels") {
			t.Errorf("apply %v: no refusal: %s", args, r)
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("apply %v printed the secret value: %s", args, r)
		}
	}
	if rows := e.ps(); len(rows) != 0 {
		t.Fatalf("a refused apply created boxes: %v", rows)
	}
}

func TestApplyReportsFileErrorsWithTheLine(t *testing.T) {
	e := newEnv(t)
	path := writeBoxesFile(t, "boxes:\n  web:\n    command: [/bin/true]\n    restrat: always\n")
	r := e.boxsup("apply", "-f", path)
	if r.code != 1 || !strings.Contains(r.stderr, `boxes.yaml:4:5: unknown field "restrat"`) {
		t.Fatalf("apply of a misspelt key: %s", r)
	}
	cycle := writeBoxesFile(t, "boxes:\n  a: {command: [x], depends_on: [b]}\n  b: {command: [x], depends_on: [a]}\n")
	r = e.boxsup("apply", "--dry-run", "-f", cycle)
	if r.code != 1 || !strings.Contains(r.stderr, "dependency cycle: a -> b -> a") {
		t.Fatalf("apply of a cycle: %s", r)
	}
	for _, args := range [][]string{{"apply"}, {"apply", "-f", path, "--parallel", "-1"}, {"apply", "-f", path, "extra"}} {
		if r := e.boxsup(args...); r.code != 2 {
			t.Errorf("boxsup %v: want exit 2: %s", args, r)
		}
	}
}

// TestSuperviseConfigRefusedAtStart: a --config the supervisor cannot
// apply stops it at start, with the reason.
func TestSuperviseConfigRefusedAtStart(t *testing.T) {
	e := newEnv(t)
	path := writeBoxesFile(t, "boxes:\n  web:\n    command: [/bin/sleep, \"1000\"]\n")
	cmd := exec.Command(boxsupBin, "--home", e.home, "supervise", "--config", path)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "cannot store box labels") {
		t.Fatalf("supervise --config: %v\n%s", err, out)
	}
	if rows := e.ps(); len(rows) != 0 {
		t.Fatalf("boxes created: %v", rows)
	}
}

// TestSuperviseSurvivesSIGHUP: without --config a SIGHUP is logged and
// ignored (it used to end the supervisor), and the home is still served.
func TestSuperviseSurvivesSIGHUP(t *testing.T) {
	e := newSupervisedEnv(t)
	if err := e.sup.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the SIGHUP to be logged", func() bool {
		_, ok := e.sup.logLine("SIGHUP ignored: no --config to apply")
		return ok
	})
	if e.sup.exited() {
		t.Fatal("supervise exited on SIGHUP")
	}
	e.runDetached("after-hup", nil, "exec sleep 1000")
}
