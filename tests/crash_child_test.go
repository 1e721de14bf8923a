package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// conditionPollInterval is how often a crash test re-checks a state it
// waits for (a box leaving unknown, a child reaching its crash point).
const conditionPollInterval = time.Millisecond

// Child processes of the crash tests. The test binary plays them when
// started with childModeEnv set (TestMain hands over to runChild):
//
//   - "reaper" makes itself a child subreaper, starts the mode named by
//     childInnerEnv as its own child with the same stdout, reaps every
//     orphan that is reparented to it, and exits when its stdin closes. It
//     stands in for the init of a real host: PID 1 here does not reap, so
//     without it the shims of a SIGKILLed supervisor would end as zombies
//     nobody reaps (and PIDs never freed). With it, the shims are orphans
//     of a process that is not the new supervisor, as in production: the
//     new supervisor adopts them without being their parent.
//   - "storm" opens a supervisor on the home and starts the detached boxes
//     childIDsEnv names, all at once, printing its progress on stdout, and
//     then waits to be killed.
//   - "nofile" lowers its RLIMIT_NOFILE and opens a supervisor on a home
//     whose boxes all run (see TestTransientErrorsAtAdoptionAreNotVerdicts).
const (
	childInnerEnv  = "BOXSUP_TEST_CHILD_INNER"  // the reaper's child's mode
	childCgroupEnv = "BOXSUP_TEST_CHILD_CGROUP" // "off" for shimproc.CgroupOff
	childLimitEnv  = "BOXSUP_TEST_CHILD_NOFILE" // the RLIMIT_NOFILE of mode nofile
)

// childModes are the modes of runChild besides "start".
var childModes = map[string]func() int{
	"reaper": runReaper,
	"storm":  runStorm,
	"nofile": runNoFile,
}

// childConfig is the supervisor configuration of a child process.
func childConfig() (actors.Config, error) {
	log, err := logging.New(logging.Options{Level: "error"})
	if err != nil {
		return actors.Config{}, err
	}
	cfg := actors.Config{Home: os.Getenv(childHomeEnv), ShimBinary: os.Getenv(childShimEnv), Logger: log}
	if os.Getenv(childCgroupEnv) == "off" {
		cfg.Cgroup = shimproc.CgroupOff
	}
	return cfg, nil
}

// say prints one line of progress for the test; a lost line only makes the
// test fail, so errors are not checked.
var sayMu sync.Mutex

func say(format string, args ...any) {
	sayMu.Lock()
	defer sayMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func runReaper() int {
	if err := testutil.BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		return 1
	}
	inner := exec.Command(os.Args[0], "-test.run=^$")
	inner.Env = append(os.Environ(), childModeEnv+"="+os.Getenv(childInnerEnv))
	inner.Stdin, inner.Stdout, inner.Stderr = nil, os.Stdout, os.Stderr
	if err := inner.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testutil.ReapChildren()
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes our stdin
	_ = inner.Process.Kill()             // if the test did not
	return 0
}

// runStorm starts the boxes concurrently (every other one with
// restart=always) and reports "pid P", then
// "started ID PID" and "ready ID PID" as the events come, and "done" when
// every Start has returned. It never shuts down: the test kills it.
func runStorm() int {
	cfg, err := childConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.OnEvent = func(ev messages.Event) {
		switch e := ev.(type) {
		case messages.BoxStarted:
			say("started %s %d", e.BoxID, e.PID)
		case messages.BoxReady:
			say("ready %s %d", e.BoxID, e.PID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	sup, err := actors.NewSupervisor(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewSupervisor:", err)
		return 1
	}
	ids := strings.Split(os.Getenv(childIDsEnv), ",")
	say("pid %d", os.Getpid())
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := guestSpec(cfg.Home, "/bin/sleep", "300")
			spec.Detach = true
			req := messages.StartBox{ID: id, Spec: spec}
			if i%2 == 1 {
				req.Restart = messages.RestartPolicy{Mode: messages.RestartAlways}
			}
			if _, err := sup.Start(ctx, req); err != nil {
				say("failed %s %v", req.ID, err)
			}
		}()
	}
	wg.Wait()
	say("done")
	<-ctx.Done()
	return 1 // not killed: the test failed to, and will say so
}

// reaperProc is a running reaper and the lines its child prints.
type reaperProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

// startReaper starts the test binary as a reaper whose child plays inner,
// with env added to the environment. Cleanup closes the reaper's stdin and
// waits for it.
func startReaper(t *testing.T, inner string, env ...string) *reaperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env,
		childModeEnv+"=reaper",
		childInnerEnv+"="+inner,
		childShimEnv+"="+shimBinary,
		"GORACE=atexit_sleep_ms=0",
	)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &reaperProc{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer close(r.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		<-r.done // the reaper's stdout closes when it and its child are gone
		_ = cmd.Wait()
	})
	return r
}

// next returns the child's next line, failing the test when none comes.
func (r *reaperProc) next(t *testing.T) []string {
	t.Helper()
	select {
	case line, ok := <-r.lines:
		if !ok {
			t.Fatalf("the child process ended early (see stderr)")
		}
		return strings.Fields(line)
	case <-time.After(callTimeout):
		t.Fatalf("the child process printed nothing for %s", callTimeout)
	}
	return nil
}

// killAndWait SIGKILLs pid and waits until it is gone (the reaper reaps it).
func killAndWait(t *testing.T, pid int) {
	t.Helper()
	id, err := identityOf(pid)
	if err != nil {
		t.Fatalf("the child process %d is already gone: %v", pid, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL to the child process: %v", err)
	}
	eventually(t, "the killed child to be reaped", func() (bool, string) {
		return id.gone(), "still there"
	})
}

// runNoFile opens a supervisor with RLIMIT_NOFILE lowered to childLimitEnv
// on a home whose boxes all run, then lowers it to the descriptors in use
// (closeFDTable), prints what List says ("list JSON"), and acts on a box
// that is unknown at that moment and whose record it read: with box
// cgroups, it stops it
// (once the box has taken the Stop, the limit is raised again, so that the
// kill and the state writes can go through) and prints "stop JSON"; without,
// it prints the answers to Stop, Kill and Remove(force) ("stop", "kill",
// "rm"), which must refuse. A box whose files it could not read is
// stopped too ("stop-unread"), which must refuse in both cases. Then it
// raises the limit, shuts down with LeaveRunning and prints "bye".
func runNoFile() int {
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	limit, _ := strconv.ParseUint(os.Getenv(childLimitEnv), 10, 64)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: saved.Max}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	restore := func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &saved) }
	cfg, err := childConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	sup, err := actors.NewSupervisor(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewSupervisor:", err)
		return 1
	}
	// Descriptors the boot used briefly are free again: without this, an
	// unknown box's next verification could succeed between List and the
	// request aimed at it, and the request would meet a running box.
	if err := closeFDTable(saved.Max); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	list, err := sup.List(ctx, actors.ListOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "List:", err)
		return 1
	}
	say("list %s", mustJSON(list))
	// pick closes the descriptor table again (a descriptor that was in
	// use at the first closing may have been freed since) and returns a box
	// that is unknown right now, its record read (it names a pid) or not.
	pick := func(recordRead bool) string {
		_ = closeFDTable(saved.Max)
		list, _ := sup.List(ctx, actors.ListOptions{})
		for _, st := range list {
			if st.State != messages.StateUnknown || (st.PID != 0) != recordRead {
				continue
			}
			if now, err := sup.Status(ctx, st.ID); err == nil && now.State == messages.StateUnknown {
				return st.ID
			}
		}
		return ""
	}
	type reply struct {
		Status messages.BoxStatus
		Err    string
	}
	if unread := pick(false); unread != "" {
		st, err := sup.Stop(ctx, unread, 10*time.Second)
		say("stop-unread %s", mustJSON(reply{st, errString(err)}))
	}
	if cfg.Cgroup != shimproc.CgroupOff {
		if target := pick(true); target != "" {
			done := make(chan reply, 1)
			go func() {
				st, err := sup.Stop(ctx, target, 10*time.Second)
				done <- reply{st, errString(err)}
			}()
			for {
				st, err := sup.Status(ctx, target)
				if err != nil || st.State != messages.StateUnknown {
					break
				}
				time.Sleep(conditionPollInterval)
			}
			restore()
			say("stop %s", mustJSON(<-done))
		}
	} else {
		for _, c := range []struct {
			name string
			call func(id string) (messages.BoxStatus, error)
		}{
			{"stop", func(id string) (messages.BoxStatus, error) { return sup.Stop(ctx, id, 10*time.Second) }},
			{"kill", func(id string) (messages.BoxStatus, error) { return sup.Kill(ctx, id) }},
			{"rm", func(id string) (messages.BoxStatus, error) { return sup.Remove(ctx, id, true) }},
		} {
			if target := pick(true); target != "" {
				st, err := c.call(target)
				say("%s %s", c.name, mustJSON(reply{st, errString(err)}))
			}
		}
	}
	restore()
	if err := sup.Shutdown(ctx, actors.LeaveRunning); err != nil {
		fmt.Fprintln(os.Stderr, "Shutdown:", err)
		return 1
	}
	say("bye")
	return 0
}

// closeFDTable lowers RLIMIT_NOFILE to the lowest descriptor number not in
// use, so that no new descriptor can be opened (a descriptor gets the
// lowest free number, which the limit must exceed). It opens nothing.
func closeFDTable(max uint64) error {
	low := 0
	for {
		if _, err := unix.FcntlInt(uintptr(low), unix.F_GETFD, 0); err != nil {
			break // EBADF: free
		}
		low++
	}
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(low), Max: max})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
