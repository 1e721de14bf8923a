package shim

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of the sweep: a member that forks while being killed can add a new
// member, so the sweep repeats until a pass finds nothing, within limits.
const (
	sweepMaxPasses = 50
	sweepPause     = 2 * time.Millisecond
)

// sweepProcessGroup SIGKILLs every remaining process of the shim's process
// group except the shim itself, and returns how many it signalled. It runs
// once the guest has exited: the box's life is the guest's life, and a
// process the guest left behind (a daemonised child, a background job)
// would otherwise outlive the box with nobody to stop it — in particular
// when the keepalive reported that the supervisor is gone.
//
// It does nothing unless the shim leads its own process group, which the
// supervisor guarantees (Setpgid, or Setsid when detached): a shim started
// from inside somebody else's group must not kill its neighbours. Processes
// that left the group (setsid, setpgid) escape the sweep; only a cgroup, the
// supervisor's business, contains those.
//
// When the supervisor put the box in a cgroup of its own (CgroupEnv names
// it), the members are read from its cgroup.procs: that costs one small read
// instead of a scan of every process on the host, and also catches members
// that left the process group.
func sweepProcessGroup() int {
	self := os.Getpid()
	cgroup := os.Getenv(CgroupEnv)
	if cgroup == "" && unix.Getpgrp() != self {
		return 0
	}
	members := func() []int { return liveGroupMembers(self) }
	if cgroup != "" {
		members = func() []int { return cgroupMembers(cgroup, self) }
	}
	signalled := map[int]bool{}
	for pass := 0; pass < sweepMaxPasses; pass++ {
		members := members()
		if len(members) == 0 {
			break
		}
		for _, pid := range members {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				signalled[pid] = true
			}
		}
		time.Sleep(sweepPause) // let the kills land before looking again
	}
	return len(signalled)
}

// liveGroupMembers lists the processes of process group pgid, other than
// pgid itself, that are not yet dead (zombies are dead: only their parent's
// wait is missing).
func liveGroupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pgid {
			continue
		}
		if state, group, ok := readStatGroup(pid); ok && group == pgid && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// readStatGroup reads a process's state and process group from
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after the last ')'.
func readStatGroup(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:]) // state ppid pgrp ...
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	g, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], g, true
}

// CgroupEnv is the environment variable through which the supervisor names
// the box's own cgroup directory (absolute path).
const CgroupEnv = "BOXSUP_CGROUP"

// cgroupMembers lists the live processes of the box cgroup dir other than
// self. An unreadable cgroup.procs yields none: the supervisor's KillTree
// covers the cgroup anyway.
func cgroupMembers(dir string, self int) []int {
	b, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		return nil
	}
	var out []int
	for _, line := range bytes.Fields(b) {
		pid, err := strconv.Atoi(string(line))
		if err != nil || pid == self {
			continue
		}
		if state, _, ok := readStatGroup(pid); ok && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}
