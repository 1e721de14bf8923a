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

	"golang.org/x/sys/unix"
)

// gatedShim writes a shim for supervise --shim that waits for gate to exist
// before it becomes the reference shim (exec): a start through it stays
// spawned and unready until the test opens the gate.
func gatedShim(t *testing.T) (path, gate string) {
	t.Helper()
	dir := t.TempDir()
	path, gate = filepath.Join(dir, "gated-shim"), filepath.Join(dir, "gate")
	script := "#!/bin/sh\n" +
		"[ \"$1\" = --capabilities ] && exec " + shimBin + " --capabilities\n" +
		"while [ ! -e " + gate + " ]; do sleep 0.01; done\n" +
		"exec " + shimBin + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, gate
}

// boxProcesses lists the live processes whose argv names box id's shim
// (--box-id ID) or carries marker.
func boxProcesses(id, marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !processAlive(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte("--box-id\x00"+id+"\x00")) || (marker != "" && bytes.Contains(cmdline, []byte(marker))) {
			out = append(out, pid)
		}
	}
	return out
}

// stdinPending is how many bytes wait unread in process pid's stdin, a pipe
// (FIONREAD on a second descriptor of it, opened through /proc), or 0.
func stdinPending(pid int) int {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/fd/0", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD, which x/sys names TIOCINQ
	if err != nil {
		return 0
	}
	return n
}

// holdsStdinOf reports whether process holder has a descriptor of the pipe
// that is process pid's stdin (by the pipe's inode, as /proc links name it).
func holdsStdinOf(holder, pid int) bool {
	pipe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/0")
	if err != nil || !strings.HasPrefix(pipe, "pipe:") {
		return false
	}
	dir := "/proc/" + strconv.Itoa(holder) + "/fd"
	fds, _ := os.ReadDir(dir)
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && link == pipe {
			return true
		}
	}
	return false
}

// TestRunDetachedThatReportsFailureLeavesNoRunningBox: a run -d whose
// supervisor dies (SIGKILL) after the box was spawned and became ready, but
// before the supervisor could answer, reports failure, and then the box is
// not left running: the command finds it, adopted by the supervisor it opens
// in its place, and kills it (issue: during a supervise SIGKILL, two run -d
// reported failure, yet their boxes existed and ran). The order is forced:
// the supervisor is stopped (SIGSTOP) before the shim may go on, so it never
// reads the ready byte.
func TestRunDetachedThatReportsFailureLeavesNoRunningBox(t *testing.T) {
	shim, gate := gatedShim(t)
	e := newEnv(t)
	e.sup = startSupervise(t, e.home, "--shim", shim)
	marker := filepath.Join(t.TempDir(), "guest-ran")

	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	run := exec.CommandContext(ctx, boxsupBin, "--home", e.home, "run", "-d", "--name", "late", "-e", markEnv,
		"--", "/bin/sh", "-c", "touch "+marker+"; exec sleep 300")
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	// Spawned is not enough: the supervisor hands the spec to the shim's
	// stdin on a goroutine after the spawn, and the shim reads to EOF.
	// Stopped before it wrote and closed its end, the supervisor would leave
	// the shim waiting for ever. Wait until the spec is in the pipe and the
	// supervisor holds no end of it.
	eventually(t, "the box's shim to be spawned with its whole spec, waiting at the gate", func() bool {
		pids := boxProcesses("late", "")
		return len(pids) > 0 && stdinPending(pids[0]) > 0 && !holdsStdinOf(e.sup.cmd.Process.Pid, pids[0])
	})

	if err := e.sup.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the guest to run", func() bool { _, err := os.Stat(marker); return err == nil })
	e.sup.kill() // SIGKILL: it never saw the ready byte
	e.sup = nil

	err := run.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run -d whose supervisor died mid-start: %v\n%s; want exit 1", err, out.String())
	}
	if !strings.Contains(out.String(), "was killed, since its start failed") {
		t.Errorf("run -d's error does not say the box was killed:\n%s", out.String())
	}
	if left := boxProcesses("late", marker); len(left) > 0 {
		t.Fatalf("run -d reported failure and left processes of the box running: %v\n%s", left, out.String())
	}
	if row := e.ps()["late"]; row.State == "running" || row.PID != 0 {
		t.Fatalf("after the failed run -d: %+v; want the box at rest", row)
	}
}
