package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// selfThreads returns the number of OS threads of this process.
func selfThreads() (int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("/proc/self/status has no Threads line")
}

// childrenOf returns the children of pid, from every thread's children
// list (the shim forks its guest from a locked thread, not the leader).
func childrenOf(pid int) ([]int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// procSample is what the metrics floor reads for one process.
type procSample struct {
	utime, stime, startTime uint64
	rssPages, vsizePages    uint64
}

// readProcSample reads /proc/PID/stat (CPU times, start time) and
// /proc/PID/statm (memory) with one buffer: the floor of a metrics sample.
func readProcSample(pid int, buf []byte) (procSample, error) {
	var s procSample
	prefix := "/proc/" + strconv.Itoa(pid)
	stat, err := readInto(prefix+"/stat", buf)
	if err != nil {
		return s, err
	}
	f, err := statFields(stat)
	if err != nil {
		return s, fmt.Errorf("%s/stat: %w", prefix, err)
	}
	s.utime, _ = strconv.ParseUint(string(f[11]), 10, 64)
	s.stime, _ = strconv.ParseUint(string(f[12]), 10, 64)
	s.startTime, _ = strconv.ParseUint(string(f[19]), 10, 64)
	statm, err := readInto(prefix+"/statm", buf)
	if err != nil {
		return s, err
	}
	m := bytes.Fields(statm)
	if len(m) < 2 {
		return s, fmt.Errorf("%s/statm: %d fields", prefix, len(m))
	}
	s.vsizePages, _ = strconv.ParseUint(string(m[0]), 10, 64)
	s.rssPages, _ = strconv.ParseUint(string(m[1]), 10, 64)
	return s, nil
}

// statFields splits /proc/PID/stat after the command, which may hold spaces
// and parentheses: f[0] is field 3 (state), f[1] field 4 (ppid), utime is
// f[11] (field 14), stime f[12], starttime f[19]. It checks that those are
// there.
func statFields(stat []byte) ([][]byte, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, errors.New("no command field")
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("%d fields", len(f))
	}
	return f, nil
}

// readInto reads a small file into buf with open/read/close.
func readInto(path string, buf []byte) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	return buf[:n], nil
}

// leftover is a process found alive under a benchmark directory at the end.
type leftover struct {
	pid  int
	exe  string
	cwd  string
	comm string
}

func (l leftover) String() string {
	return fmt.Sprintf("pid %d (%s) exe=%s cwd=%s", l.pid, l.comm, l.exe, l.cwd)
}

// findLeftovers lists live processes whose working directory lies under
// root (every shim and guest of a run works in its box directory there) or
// whose executable is shim with a cwd under root. Zombies are skipped:
// they hold nothing and their parent reaps them.
func findLeftovers(root string) []leftover {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []leftover
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil || !strings.HasPrefix(cwd, root+"/") {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		out = append(out, leftover{pid: pid, exe: exe, cwd: cwd, comm: strings.TrimSpace(string(comm))})
	}
	return out
}

// killLeftovers SIGKILLs every leftover and returns their descriptions. Each
// is signalled through a pidfd opened before its cwd is checked again, so a
// recycled PID is never hit.
func killLeftovers(root string) []string {
	var out []string
	for _, l := range findLeftovers(root) {
		fd, err := unix.PidfdOpen(l.pid, 0)
		if err != nil {
			continue // gone meanwhile
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", l.pid)); err == nil && strings.HasPrefix(cwd, root+"/") {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			out = append(out, l.String())
		}
		_ = unix.Close(fd)
	}
	return out
}
