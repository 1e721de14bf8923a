package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/testutil"
)

func TestRunScriptAndINICommand(t *testing.T) {
	t.Parallel()
	sleeper := []string{"/usr/bin/sleep", "3600"}
	if got, want := runScript(sleeper), "#!/bin/sh\nexec /usr/bin/sleep 3600\n"; got != want {
		t.Errorf("runScript(sleeper) = %q, want %q", got, want)
	}
	ign := ignorerArgv("/bin/sh", "/usr/bin/sleep")
	if got, want := runScript(ign), "#!/bin/sh\ntrap '' TERM INT && exec /usr/bin/sleep 3600\n"; got != want {
		t.Errorf("runScript(ignorer) = %q, want %q", got, want)
	}
	if got, want := iniCommand(sleeper), "/usr/bin/sleep 3600"; got != want {
		t.Errorf("iniCommand(sleeper) = %q, want %q", got, want)
	}
	// No ';' (an INI comment for some parsers) and the script as one quoted word.
	if got, want := iniCommand(ign), `/bin/sh -c "trap '' TERM INT && exec /usr/bin/sleep 3600"`; got != want {
		t.Errorf("iniCommand(ignorer) = %q, want %q", got, want)
	}
	if got := secondsCeil(100 * time.Millisecond); got != 1 {
		t.Errorf("secondsCeil(100ms) = %d, want 1", got)
	}
	if got := secondsCeil(1500 * time.Millisecond); got != 2 {
		t.Errorf("secondsCeil(1.5s) = %d, want 2", got)
	}
}

func TestPeerReportMarkdown(t *testing.T) {
	t.Parallel()
	d := newPeerData()
	d.add("start", 10, "boxsup", 2*time.Second, "1.50 1.00 0.50")
	d.add("start", 10, "s6", time.Second, "2.50 1.00 0.50")
	d.add("start", 10, floorName, 500*time.Millisecond, "")
	d.setRecovery("boxsup", recoverySample{services: 10, running: 10, samePIDs: 10})
	d.setMetrics("s6", metricsSample{none: true})
	d.setMetrics("boxsup", metricsSample{took: Summary{N: 5, P50: 4 * time.Millisecond, P99: 5 * time.Millisecond}, covered: 10, of: 10})
	cfg := PeersConfig{Ns: []int{10}, Rounds: 1, Crashes: 1, IgnorerStops: 1, Idle: time.Second, Recovery: 10, CrashSpacing: time.Second}
	rows, targets := d.rows([]string{"boxsup", "s6"}, cfg)
	rep := &PeerReport{
		Peers: []*PeerInfo{{Name: "boxsup"}, {Name: "s6"}, {Name: "pm2", Skipped: "pm2 not found on PATH"}},
		Rows:  rows, Targets: targets, RunningCheck: "exec of sleep",
	}
	md := rep.Markdown()
	for _, want := range []string{
		"| workload | boxsup | s6 | floor |",
		"| P1-10 start 10 until all running (median of 1 rounds) | 2.00 s | 1.00 s (0.50×) | 500 ms (0.25×) |",
		"| P7 metrics of 10 services through the peer's own interface, p50 of 5 calls | 4.00 ms | none | — |",
		"10 running, 10 of them same PIDs; 0 duplicates; 0 orphans",
		"| start 10 ≤ 1.0× s6 | 2.00× | missed |",
		"| start 10 ≤ 1.2× boxsup's floor (raw shims) | 4.00× | missed |",
		"load average (1 min) at the samples: boxsup 1.5, s6 2.5",
		"- pm2 skipped: pm2 not found on PATH",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestProcHelpersOnARealChild(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1):", err)
	}
	sleepExe, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	cmd := testutil.StartChild(t, sleep, "60")
	pid := cmd.Process.Pid
	self := os.Getpid()
	if !descendsFrom(pid, []int{self}) {
		t.Errorf("descendsFrom(%d, self) = false", pid)
	}
	if descendsFrom(self, []int{pid}) {
		t.Errorf("descendsFrom(self, child) = true")
	}
	if !eventually(5*time.Second, func() bool { return runsExe(pid, sleepExe) }) {
		t.Fatalf("pid %d never ran %s", pid, sleepExe)
	}
	c := censusOf([]int{self}, sleepExe)
	found := false
	for _, p := range c.sleeps {
		found = found || p == pid
	}
	if !found {
		t.Errorf("census of this process: sleeps %v lack %d", c.sleeps, pid)
	}
	if kib, err := pssKiB(self); err != nil || kib == 0 {
		t.Errorf("pssKiB(self) = %d, %v", kib, err)
	}
	if d, err := cpuTime(self); err != nil || d <= 0 {
		t.Errorf("cpuTime(self) = %v, %v", d, err)
	}
}

// eventually polls ok until it holds or timeout passes.
func eventually(timeout time.Duration, ok func() bool) bool {
	return pollUntil(timeout, time.Millisecond, ok)
}

func TestProcWatchSeesTheExecOfSleep(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1):", err)
	}
	sleepExe, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	w := newProcWatch(sleepExe)
	defer w.close()
	t0 := monoNow()
	cmd := testutil.StartChild(t, sleep, "60")
	pid := cmd.Process.Pid
	seen := eventually(10*time.Second, func() bool {
		for _, e := range w.execsSince(t0) {
			if e.pid == pid {
				return true
			}
		}
		return false
	})
	if !seen {
		t.Fatalf("the watch (%s) never saw pid %d exec sleep", w.method, pid)
	}
	w.followExits([]int{pid})
	_ = cmd.Process.Kill()
	if !eventually(10*time.Second, func() bool { _, ok := w.exitOf(pid); return ok }) {
		t.Fatalf("the watch (%s) never saw pid %d exit", w.method, pid)
	}
}

func TestTraceStopSeesAnIgnoredSIGTERM(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh(1):", err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1):", err)
	}
	cmd := exec.Command(sh, "-c", "trap '' TERM INT && exec "+sleep+" 60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// The tracer reaps its tracee, which is also this test's child: os/exec
	// must not wait for it too.
	_ = cmd.Process.Release()
	defer unix.Kill(pid, unix.SIGKILL)
	mask := sigBit(unix.SIGTERM) | sigBit(unix.SIGINT)
	if !eventually(10*time.Second, func() bool { return sigIgnored(pid, mask) }) {
		t.Fatalf("pid %d never came to ignore SIGTERM and SIGINT", pid)
	}
	tr, err := traceStop(pid)
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			t.Skip("ptrace not permitted here:", err)
		}
		t.Fatal(err)
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool { return tr.firstStop.Load() != 0 }) {
		t.Fatal("the tracer never saw the ignored SIGTERM")
	}
	if !live(pid) {
		t.Fatalf("pid %d died of an ignored SIGTERM", pid)
	}
	if err := unix.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took, err := tr.wait(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took < 0 {
		t.Errorf("death %v before the SIGTERM", took)
	}
}
