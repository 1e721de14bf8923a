package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
)

// TestSuperviseKilledThenAdopted: a supervisor dies by SIGKILL while its
// boxes run; one box crashes while nobody supervises. A new supervisor
// adopts the survivor (same PID) and restarts the crashed box per its
// restart policy.
func TestSuperviseKilledThenAdopted(t *testing.T) {
	e := newSupervisedEnv(t)
	dir := t.TempDir()
	trigger, crashed := filepath.Join(dir, "trigger"), filepath.Join(dir, "crashed")
	e.runDetached("steady", nil, "exec sleep 60")
	// Crashes (exit 3) once the test touches trigger; its restart runs on.
	e.runDetached("crasher", []string{"--restart", "on-failure"},
		"if [ -e "+crashed+" ]; then exec sleep 60; fi; while [ ! -e "+trigger+" ]; do sleep 0.02; done; touch "+crashed+"; exit 3")
	before := e.ps()
	steadyPID, crasherPID := before["steady"].PID, before["crasher"].PID

	e.sup.kill()
	if !processAlive(steadyPID) || !processAlive(crasherPID) {
		t.Fatal("the boxes died with their supervisor: they must outlive it")
	}
	if err := os.WriteFile(trigger, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the crasher to exit while unsupervised", func() bool { return !processAlive(crasherPID) })

	e.sup = startSupervise(t, e.home)
	var after map[string]psJSONRow
	eventually(t, "the new supervisor to restart the crasher", func() bool {
		after = e.ps()
		c := after["crasher"]
		return c.State == "running" && c.PID != crasherPID && c.PID != 0
	})
	if s := after["steady"]; s.State != "running" || s.PID != steadyPID {
		t.Fatalf("steady after the new supervisor: %+v, want running with the same pid %d", s, steadyPID)
	}
	if c := after["crasher"]; c.Restarts != 1 || c.ExitCode == nil || *c.ExitCode != 3 {
		t.Fatalf("crasher: %+v, want 1 restart after exit 3", c)
	}
	if _, ok := e.sup.logLine("adopted running shim"); !ok {
		t.Error("the new supervisor did not log an adoption")
	}
}

// TestSuperviseLeavesBoxesRunningOrStopsThem: SIGTERM leaves detached boxes
// for the next supervisor; --stop-on-exit stops them.
func TestSuperviseLeavesBoxesRunningOrStopsThem(t *testing.T) {
	e := newSupervisedEnv(t)
	e.runDetached("keep", nil, "exec sleep 60")
	pid := e.ps()["keep"].PID
	e.sup.stop()
	if !processAlive(pid) {
		t.Fatal("SIGTERM to supervise stopped a detached box")
	}
	e.sup = startSupervise(t, e.home, "--stop-on-exit")
	if row := e.ps()["keep"]; row.PID != pid || row.State != "running" {
		t.Fatalf("after restart of supervise: %+v, want pid %d adopted", row, pid)
	}
	e.sup.stop()
	if processAlive(pid) {
		t.Fatal("--stop-on-exit left the box running")
	}
	e.sup = nil
	if row := e.ps()["keep"]; row.State != "exited" {
		t.Fatalf("after --stop-on-exit: %+v", row)
	}
}

// TestControlSocketRefusesAnotherUID runs boxsup as nobody against a
// supervisor running as root: refused by the socket's mode, and by the
// SO_PEERCRED check when the mode is loosened.
func TestControlSocketRefusesAnotherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the client as another uid")
	}
	base, err := os.MkdirTemp("", "boxsup-e2e-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	home := filepath.Join(base, "home")
	e := newEnv(t)
	e.home = home
	e.sup = startSupervise(t, home)
	for _, d := range []string{base, home} { // let nobody reach the socket
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	asNobody := func() result {
		cmd := exec.Command(boxsupBin, "--home", home, "ps")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stdout, stderr testutil.SyncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := asNobody(); r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("nobody against the 0600 socket: %s", r)
	}
	if err := os.Chmod(e.sup.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	r := asNobody()
	if r.code != 1 || !strings.Contains(r.stderr, "uid 65534 may not use the control socket") {
		t.Fatalf("nobody against a 0666 socket: %s; want the SO_PEERCRED refusal", r)
	}
	if !strings.Contains(e.sup.log.String(), "control connection refused") {
		t.Error("the supervisor did not log the refusal")
	}
	e.must("ps") // root is still served
}

// TestMetricsEndpoint scrapes supervise's /metrics over HTTP.
func TestMetricsEndpoint(t *testing.T) {
	e := newSupervisedEnv(t, "--metrics-addr", "127.0.0.1:0")
	if e.sup.metricsAddr == "" {
		t.Fatal("supervise did not log its metrics address")
	}
	e.runDetached("m1", nil, "exec sleep 60")
	e.runDetached("m2", nil, "exec sleep 60")
	e.must("stop", "m2")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + e.sup.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	text := string(body)
	for _, want := range []string{
		`boxsup_box_cpu_percent{box="m1"}`,
		`boxsup_box_memory_bytes{box="m1"}`,
		`boxsup_box_disk_bytes{box="m1"}`,
		`boxsup_box_restarts_total{box="m1"} 0`,
		`boxsup_box_state{box="m1",state="running"} 1`,
		`boxsup_box_state{box="m2",state="exited"} 1`,
		`boxsup_start_seconds_count 2`,
		`boxsup_stop_seconds_count 1`,
		`go_goroutines`,
		`process_cpu_seconds_total`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestDemo runs the walkthrough (3 boxes: about two seconds) and checks
// that it cleaned up after itself.
func TestDemo(t *testing.T) {
	newEnv(t) // for the leftover check
	r := runBoxsup(t, nil, "demo", "--boxes", "3")
	if r.code != 0 {
		t.Fatalf("demo: %s", r)
	}
	for _, want := range []string{
		"start 3 detached boxes", "live metrics", "crashy crashes", "stop stubborn",
		"SIGKILLed at the 500ms timeout", "abandon the supervisor", "adopts the survivors by PID",
		"stop everything", "summary", "processes left behind: 0",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	home := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(r.stdout, "\n", 2)[0], "boxsup demo: 3 boxes in the temporary home "))
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("demo left its home %q behind: %v", home, err)
	}
}
