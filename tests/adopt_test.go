package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// The test binary plays a supervisor process that dies without Shutdown
// when started with these variables (see runChild).
const (
	childModeEnv = "BOXSUP_TEST_CHILD"      // "start"
	childHomeEnv = "BOXSUP_TEST_CHILD_HOME" // the home to open
	childIDsEnv  = "BOXSUP_TEST_CHILD_IDS"  // comma-separated box IDs
	childShimEnv = "BOXSUP_TEST_CHILD_SHIM" // the shim binary
)

// runChild is the child process's whole life in mode "start": open a
// supervisor on the home, start one detached sleep box per ID, print
// "box ID PID" for each and then "ready", and exit without Shutdown. The
// home's lock dies with the process; the detached shims live on.
func runChild(mode string) int {
	if run, ok := childModes[mode]; ok {
		return run()
	}
	if mode != "start" {
		fmt.Fprintf(os.Stderr, "unknown %s mode %q\n", childModeEnv, mode)
		return 2
	}
	home := os.Getenv(childHomeEnv)
	log, err := logging.New(logging.Options{Level: "warn"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sup, err := actors.NewSupervisor(context.Background(), actors.Config{Home: home, ShimBinary: os.Getenv(childShimEnv), Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewSupervisor:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	for _, id := range strings.Split(os.Getenv(childIDsEnv), ",") {
		spec := guestSpec(home, "/bin/sleep", "300")
		spec.Detach = true
		st, err := sup.Start(ctx, messages.StartBox{ID: id, Spec: spec})
		if err != nil {
			fmt.Fprintf(os.Stderr, "Start(%s): %v\n", id, err)
			return 1
		}
		fmt.Printf("box %s %d\n", id, st.PID)
	}
	fmt.Println("ready")
	return 0 // deliberately no sup.Shutdown: this is the crash
}

// runChildSupervisor runs the test binary in child mode on home and returns
// the shim pid of each box it started. Every pid is tracked at once, so
// that a failure below still gets the processes cleaned up.
func runChildSupervisor(t *testing.T, home string, tr *procTracker, ids []string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childModeEnv+"=start",
		childHomeEnv+"="+home,
		childIDsEnv+"="+strings.Join(ids, ","),
		childShimEnv+"="+shimBinary,
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	pids := map[string]int{}
	ready := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "box":
			pid, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			pids[f[1]] = pid
			tr.trackTree(pid, "shim of "+f[1])
		case len(f) == 1 && f[0] == "ready":
			ready = true
		}
	}
	if runErr != nil || !ready || len(pids) != len(ids) {
		t.Fatalf("child supervisor: err %v, ready %v, boxes %v\nstdout:\n%s\nstderr:\n%s", runErr, ready, pids, out, stderr.String())
	}
	return pids
}

// TestAdoptAfterSupervisorCrash: a supervisor process dies without
// Shutdown, leaving detached boxes behind. Meanwhile one box's shim is asked
// to stop (it writes exit.json) and another's pid is "recycled" by an
// unrelated process. A new supervisor on the same home adopts the live
// boxes by pid, reports the dead one with its exit record and the recycled
// one as lost, and never touches the unrelated process.
func TestAdoptAfterSupervisorCrash(t *testing.T) {
	checkGoroutines(t)
	home := t.TempDir()
	tr := trackerFor(t, home)
	ids := []string{"live1", "live2", "dead", "recycled"}
	for _, id := range ids {
		tr.useBox(id)
	}
	pids := runChildSupervisor(t, home, tr, ids)
	shims := map[string]procID{}
	for id, pid := range pids {
		shim, err := identityOf(pid)
		if err != nil {
			t.Fatalf("shim of %s (pid %d) did not outlive its supervisor: %v", id, pid, err)
		}
		shims[id] = shim
	}

	// "dead": stopped while nobody supervised it; the shim records its exit.
	if err := syscall.Kill(pids["dead"], syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to the dead box's shim: %v", err)
	}
	eventually(t, "the dead box's shim to exit and write exit.json", func() (bool, string) {
		_, err := os.Stat(exitFilePath(home, "dead"))
		return !shims["dead"].alive() && err == nil, fmt.Sprintf("alive=%v exit.json: %v", shims["dead"].alive(), err)
	})

	// "recycled": the shim dies without a record and its pid now names a
	// process the test owns (same pid in the record, a different start time).
	if err := syscall.Kill(pids["recycled"], syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL to the recycled box's shim: %v", err)
	}
	eventually(t, "the recycled box's shim to die", func() (bool, string) {
		return !shims["recycled"].alive(), "still alive"
	})
	squatter := startSquatter(t)
	squatterID, err := identityOf(squatter.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rewriteIdentity(t, home, "recycled", squatterID.PID, squatterID.Start+1)

	h := startHarness(t, home, withOwnSystem())

	for _, id := range []string{"live1", "live2"} {
		st := h.status(id)
		if st.State != messages.StateRunning || st.PID != pids[id] {
			t.Errorf("%s after reboot: state %q pid %d, want running pid %d (adopted)", id, st.State, st.PID, pids[id])
		}
		adopted := waitForEvent[messages.BoxAdopted](t, h.events, id, 1)[0]
		if adopted.PID != pids[id] {
			t.Errorf("%s: BoxAdopted pid %d, want %d", id, adopted.PID, pids[id])
		}
		if !shims[id].alive() {
			t.Errorf("%s: adopted shim pid %d is not running", id, pids[id])
		}
		if n := len(eventsOf[messages.BoxStarted](h.events.all(), id)); n != 0 {
			t.Errorf("%s: %d BoxStarted events; adoption must not respawn", id, n)
		}
	}

	dead := h.status("dead")
	if dead.State != messages.StateExited {
		t.Errorf("dead box state %q, want exited", dead.State)
	}
	if ex := dead.LastExit; ex == nil {
		t.Errorf("dead box has no LastExit")
	} else {
		if ex.Source != messages.SourceExitFile {
			t.Errorf("dead box LastExit.Source = %q, want %q (%+v)", ex.Source, messages.SourceExitFile, *ex)
		}
		if ex.Signal != "SIGTERM" && ex.ExitCode != 128+15 {
			t.Errorf("dead box LastExit = %+v, want the SIGTERM exit its shim recorded", *ex)
		}
	}

	recycled := h.status("recycled")
	if recycled.State.Live() {
		t.Errorf("recycled box state %q, want it reported as not running", recycled.State)
	}
	if !strings.Contains(recycled.Reason, "lost") {
		t.Errorf("recycled box reason %q (LastExit %+v), want it to say lost", recycled.Reason, recycled.LastExit)
	}
	if recycled.PID == squatterID.PID {
		t.Errorf("recycled box reports pid %d, which belongs to an unrelated process", recycled.PID)
	}
	if st, err := readStat(squatterID.PID); err != nil || st.Ticks != squatterID.Start || (st.State != 'S' && st.State != 'R') {
		t.Errorf("unrelated process pid %d disturbed: stat %+v err %v", squatterID.PID, st, err)
	}

	if list, err := h.sup.List(h.ctx(), actors.ListOptions{}); err != nil || len(list) != len(ids) {
		t.Errorf("List after reboot: %d boxes, err %v; want %d", len(list), err, len(ids))
	}
	m, err := h.sup.Metrics(h.ctx(), "live2")
	if err != nil || m.Processes < 2 || m.PID != pids["live2"] {
		t.Errorf("Metrics of an adopted box: %+v err %v", m, err)
	}
	stopped, err := h.sup.Stop(h.ctx(), "live1", 10*time.Second)
	if err != nil || stopped.State != messages.StateExited || stopped.LastExit == nil {
		t.Errorf("Stop of an adopted box: state %q LastExit %+v err %v", stopped.State, stopped.LastExit, err)
	}
	if shims["live1"].alive() {
		t.Errorf("Stop of an adopted box answered while its shim still ran")
	}

	// The squatter must have lived until now: kill it and check that it was
	// this SIGKILL that ended it.
	if err := squatter.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("the unrelated process was already gone: %v", err)
	}
	err = squatter.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("waiting for the unrelated process: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the unrelated process ended with %v, not by the test's SIGKILL", ee)
	}
}

// startSquatter starts a process the test owns, to stand in for whatever
// took over a recycled pid. It is killed at the end if still running.
func startSquatter(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// rewriteIdentity points box id's state.json at pid with the given start
// time, as if the recorded shim's pid had been reused.
func rewriteIdentity(t *testing.T, home, id string, pid int, start uint64) {
	t.Helper()
	hm, err := layout.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	box, err := hm.Box(id)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := box.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if !rec.State.Live() {
		t.Fatalf("%s: state.json says %q, want a live record to rewrite", id, rec.State)
	}
	rec.Identity.PID, rec.Identity.StartTime = pid, start
	if err := box.WriteState(rec); err != nil {
		t.Fatal(err)
	}
}
