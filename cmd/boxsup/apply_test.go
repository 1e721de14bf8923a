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

// TestApplyCreatesUpdatesInPlaceAndRemoves: a dry run prints the plan
// and creates nothing; apply creates the boxes with their labels (and
// apply's own); a changed restart policy and label is an update in place
// (same process); a box no longer declared is removed; a secret value is
// never printed.
func TestApplyCreatesUpdatesInPlaceAndRemoves(t *testing.T) {
	e := newEnv(t)
	path := writeBoxesFile(t, applyTestFile)
	const secret = "pw-7731-do-not-print"
	env := []string{"BOXSUP_TEST_DB_PASSWORD=" + secret}
	apply := func(args ...string) result {
		t.Helper()
		r := runBoxsup(t, env, append([]string{"--home", e.home, "--log-level", "trace", "apply", "-f", path}, args...)...)
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("apply %v printed the secret value: %s", args, r)
		}
		return r
	}
	r := apply("--dry-run")
	for _, want := range []string{
		`# box "db" will be created (wave 1)`,
		`DB_PASSWORD = (sensitive, from env BOXSUP_TEST_DB_PASSWORD)`,
		`# box "web" will be created (wave 2)`,
		"Plan: 2 to create, 0 to replace",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("apply --dry-run: the plan lacks %q: %s", want, r)
		}
	}
	if rows := e.ps(); len(rows) != 0 {
		t.Fatalf("a dry run created boxes: %v", rows)
	}
	if r := apply(); r.code != 0 {
		t.Fatalf("apply: %s", r)
	}
	web := e.inspect("web")
	if web.Status.State != "running" || web.Status.Labels["app"] != "web" || web.Status.Labels["boxsup.dev/apply-id"] == "" {
		t.Fatalf("web after apply: %+v", web.Status)
	}

	if err := os.WriteFile(path, []byte(strings.Replace(applyTestFile, "labels: {app: web}", "labels: {app: site}\n    restart: always", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r = apply()
	if r.code != 0 || !strings.Contains(r.stdout, `~ box "web"`) || !strings.Contains(r.stdout, "1 to update") {
		t.Fatalf("apply of a changed label and restart policy: %s", r)
	}
	after := e.inspect("web")
	if after.Status.PID != web.Status.PID || after.Status.Labels["app"] != "site" || after.Status.Restart.Mode != "always" {
		t.Fatalf("web after the update: %+v, want pid %d kept, app=site, restart always", after.Status, web.Status.PID)
	}

	if err := os.WriteFile(path, []byte("boxes:\n  db:\n    command: [/bin/sleep, \"1000\"]\n    secrets:\n      DB_PASSWORD: {env: BOXSUP_TEST_DB_PASSWORD}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := apply(); r.code != 0 || !strings.Contains(r.stdout, `- box "web"`) {
		t.Fatalf("apply without web: %s", r)
	}
	if rows := e.ps(); len(rows) != 1 || rows["db"].State != "running" {
		t.Fatalf("after removing web from the file: %v", rows)
	}
}

// TestApplyWithHealthChecks: a declared check runs (ps shows the box
// healthy), a dependency with condition healthy is waited for, and a
// ready_when without a check is refused with its line.
func TestApplyWithHealthChecks(t *testing.T) {
	e := newEnv(t)
	path := writeBoxesFile(t, "boxes:\n"+
		"  db:\n    command: [/bin/sleep, \"1000\"]\n"+
		"    healthcheck: {exec: [/bin/true], interval: 100ms}\n"+
		"  web:\n    command: [/bin/sleep, \"1000\"]\n"+
		"    depends_on: {db: {condition: healthy}}\n")
	e.must("apply", "-f", path)
	rows := e.ps()
	if rows["db"].State != "running" || rows["web"].State != "running" {
		t.Fatalf("after apply: %v", rows)
	}
	if h := rows["db"].Health; h != "healthy" && h != "starting" {
		t.Fatalf("db's health %q", h)
	}
	bad := writeBoxesFile(t, "boxes:\n  web:\n    command: [/bin/true]\n    ready_when: healthy\n")
	if r := e.boxsup("apply", "-f", bad); r.code != 1 || !strings.Contains(r.stderr, "boxes.yaml:4:5") {
		t.Fatalf("ready_when without a check: %s", r)
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
	path := writeBoxesFile(t, "boxes:\n  web:\n    command: [/bin/sleep, \"1000\"]\n    restart: on-unhealthy\n")
	cmd := exec.Command(boxsupBin, "--home", e.home, "supervise", "--config", path)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "on-unhealthy needs a healthcheck") {
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
