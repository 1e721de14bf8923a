package shim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// pollInterval is how often waitFor re-checks its condition.
const pollInterval = 10 * time.Millisecond

// deadline bounds every wait in these tests: generous, so that a slow
// machine does not fail them; a wait succeeds as soon as its condition holds.
const deadline = 10 * time.Second

// shimMarkerEnv is set in the shim's own environment only; the guest must
// not inherit it (its environment travels in the spec).
const shimMarkerEnv = "SHIM_ONLY_MARKER"

// noRaceExitSleep stops a race-enabled binary from sleeping a second at
// exit (the race runtime's default); other binaries ignore it.
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

// launch describes how a test starts the shim, mimicking the supervisor.
type launch struct {
	args        []string // nil: --box-id <spec.BoxID>
	stdin       []byte   // nil: the spec as JSON
	noReady     bool     // pass no fd 3
	noKeepalive bool     // pass no fd 4 (also implied by spec.Detach)
	swapReady   bool     // pass the ready pipe's read end as fd 3 (a caller's mistake)
	env         []string // extra variables for the shim's own environment
	fd3         *os.File // with noReady: a descriptor a careless caller leaves at fd 3
	readySocket bool     // fd 3 is a socket (restart_in_place's restart line), not a pipe
}

// runningShim is one launched shim and the supervisor's ends of its pipes.
type runningShim struct {
	t         testing.TB
	dir       string
	spec      messages.InstanceSpec
	cmd       *exec.Cmd
	ready     *os.File // read end of the ready pipe (nil when not passed)
	keepalive *os.File // write end of the keepalive pipe (nil when not passed)
	stderr    string   // path of the shim's stderr (its shim.log)
	exited    chan struct{}
	state     *os.ProcessState // valid once exited is closed
}

// newSpec returns a valid spec for the reference engine whose guest runs
// exe args; files go to dir.
func newSpec(dir, id, exe string, args ...string) messages.InstanceSpec {
	return messages.InstanceSpec{
		Version: messages.SpecVersion,
		Engine:  messages.EngineProcess,
		BoxID:   id,
		GuestEntrypoint: messages.Entrypoint{
			Executable: exe,
			Args:       args,
			Env:        []string{"PATH=" + os.Getenv("PATH")},
			WorkDir:    dir,
		},
		ConsoleOutput: filepath.Join(dir, "console.log"),
		ExitFile:      filepath.Join(dir, "exit.json"),
	}
}

// startShim launches the shim binary as the supervisor would: spec on
// stdin, stdout and stderr to a log file, fd 3 = ready pipe write end, fd 4 =
// keepalive read end (unless detached), its own process group (a session
// when detached). Cleanup kills whatever is left of the box and checks that
// no process of it survives.
func startShim(t testing.TB, dir string, spec messages.InstanceSpec, l launch) *runningShim {
	t.Helper()
	stdin := l.stdin
	if stdin == nil {
		var err error
		if stdin, err = json.Marshal(spec); err != nil {
			t.Fatalf("marshal spec: %v", err)
		}
	}
	args := l.args
	if args == nil {
		args = []string{"--box-id", spec.BoxID}
	}
	r := &runningShim{t: t, dir: dir, spec: spec, stderr: filepath.Join(dir, "shim.log"), exited: make(chan struct{})}
	logFile, err := os.OpenFile(r.stderr, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("open shim log: %v", err)
	}
	defer logFile.Close()

	extra := make([]*os.File, 2)
	var childEnds []*os.File
	switch {
	case !l.noReady && l.readySocket:
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("socketpair: %v", err)
		}
		if err := syscall.SetNonblock(fds[0], true); err != nil {
			t.Fatalf("socketpair: %v", err)
		}
		rd, wr := os.NewFile(uintptr(fds[0]), "ready-socket"), os.NewFile(uintptr(fds[1]), "ready-socket-shim")
		r.ready, extra[0] = rd, wr
		childEnds = append(childEnds, wr)
	case !l.noReady:
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatalf("pipe: %v", err)
		}
		r.ready, extra[0] = rd, wr
		childEnds = append(childEnds, wr)
	}
	if l.noReady && l.fd3 != nil {
		extra[0] = l.fd3
	}
	if l.swapReady {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatalf("pipe: %v", err)
		}
		defer wr.Close()
		extra[0] = rd
		childEnds = append(childEnds, rd)
	}
	if !l.noKeepalive && !spec.Detach {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatalf("pipe: %v", err)
		}
		r.keepalive, extra[1] = wr, rd
		childEnds = append(childEnds, rd)
	}
	cmd := exec.Command(shimBinary, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = extra
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), shimMarkerEnv + "=1", noRaceExitSleep}, l.env...)
	if spec.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	err = cmd.Start()
	for _, f := range childEnds {
		_ = f.Close()
	}
	if err != nil {
		r.closePipes()
		t.Fatalf("start shim: %v", err)
	}
	r.cmd = cmd
	go func() {
		_ = cmd.Wait()
		r.state = cmd.ProcessState
		close(r.exited)
	}()
	t.Cleanup(r.cleanup)
	return r
}

// pid is the shim's pid, which is also its process group.
func (r *runningShim) pid() int { return r.cmd.Process.Pid }

func (r *runningShim) closePipes() {
	if r.ready != nil {
		_ = r.ready.Close()
	}
	if r.keepalive != nil {
		_ = r.keepalive.Close()
	}
}

// cleanup kills the box's process group if the shim is still running, then
// fails the test if any process of the box is left, or if the race detector
// reported anything in the shim.
func (r *runningShim) cleanup() {
	t := r.t
	select {
	case <-r.exited:
	default:
		_ = syscall.Kill(-r.pid(), syscall.SIGKILL)
		select {
		case <-r.exited:
		case <-time.After(deadline):
			t.Errorf("shim pid %d did not exit after SIGKILL to its group", r.pid())
		}
	}
	r.closePipes()
	waitFor(t, "no process of the box's group left", func() bool { return len(liveGroupMembers(r.pid())) == 0 })
	if strings.Contains(r.log(), "DATA RACE") {
		t.Errorf("the race detector reported a race in the shim:\n%s", r.log())
	}
}

// readReady waits for the ready pipe: true for the ready byte, false for
// EOF without it.
func (r *runningShim) readReady() bool {
	r.t.Helper()
	if err := r.ready.SetReadDeadline(time.Now().Add(deadline)); err != nil {
		r.t.Fatalf("set deadline: %v", err)
	}
	b := make([]byte, 1)
	n, err := r.ready.Read(b)
	switch {
	case n == 1:
		return true
	case errors.Is(err, io.EOF):
		return false
	default:
		r.t.Fatalf("ready pipe: %v (shim log:\n%s)", err, r.log())
		return false
	}
}

// wait waits for the shim to exit and returns its exit code (-1 when a
// signal killed it).
func (r *runningShim) wait() int {
	r.t.Helper()
	select {
	case <-r.exited:
		return r.state.ExitCode()
	case <-time.After(deadline):
		r.t.Fatalf("shim pid %d did not exit within %v (shim log:\n%s)", r.pid(), deadline, r.log())
		return 0
	}
}

// running reports whether the shim has not exited yet.
func (r *runningShim) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// log returns the shim's stderr so far.
func (r *runningShim) log() string {
	b, _ := os.ReadFile(r.stderr)
	return string(b)
}

// exitRecord reads the exit.json the shim wrote.
func (r *runningShim) exitRecord() messages.ExitRecord {
	r.t.Helper()
	b, err := os.ReadFile(r.spec.ExitFile)
	if err != nil {
		r.t.Fatalf("exit file: %v (shim log:\n%s)", err, r.log())
	}
	var rec messages.ExitRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		r.t.Fatalf("exit file %s: %v\n%s", r.spec.ExitFile, err, b)
	}
	return rec
}

// guestPID waits for the shim's child (the guest) to appear and returns it.
func (r *runningShim) guestPID() int {
	r.t.Helper()
	var pid int
	waitFor(r.t, "the guest process", func() bool {
		kids := childrenOf(r.pid())
		if len(kids) > 0 {
			pid = kids[0]
		}
		return pid != 0
	})
	return pid
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, deadline, pollInterval, what, cond)
}

// procStat is the part of /proc/PID/stat these tests need.
type procStat struct {
	state byte
	ppid  int
	pgrp  int
}

// readProcStat parses /proc/PID/stat, counting fields after the last ')'
// since the command name may contain anything.
func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}

// alive reports whether pid exists and is not a zombie (a zombie is dead;
// only its parent's wait is missing, and this machine's init may never reap).
func alive(pid int) bool {
	st, ok := readProcStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// scanProcs returns the live pids for which match holds.
func scanProcs(match func(procStat) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok && st.state != 'Z' && st.state != 'X' && match(st) {
			out = append(out, pid)
		}
	}
	return out
}

// liveGroupMembers lists the live processes of process group pgid.
func liveGroupMembers(pgid int) []int {
	return scanProcs(func(st procStat) bool { return st.pgrp == pgid })
}

// childrenOf lists the live children of pid.
func childrenOf(pid int) []int {
	return scanProcs(func(st procStat) bool { return st.ppid == pid })
}

// procFile reads /proc/PID/name (cmdline, environ), "" when gone.
func procFile(pid int, name string) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	return string(b)
}

// readFile returns a file's content, "" when it does not exist.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// countLines counts the lines of a file ("" when absent counts 0).
func countLines(t testing.TB, path string) int {
	t.Helper()
	return strings.Count(readFile(t, path), "\n")
}
