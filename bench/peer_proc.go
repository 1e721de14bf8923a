package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The process-tree helpers of the peer benchmark: which processes a
// supervisor runs, which of them are the benchmark's sleep children, and
// what they cost. Every peer is read the same way, from /proc, never from
// the peer's own account of its children.

// procInfo is what the peer workloads read from /proc/PID/stat.
type procInfo struct {
	ppid         int
	state        byte
	utime, stime uint64 // clock ticks
}

// readProcInfo reads /proc/PID/stat.
func readProcInfo(pid int) (procInfo, error) {
	var buf [1024]byte
	stat, err := readInto("/proc/"+strconv.Itoa(pid)+"/stat", buf[:])
	if err != nil {
		return procInfo{}, err
	}
	f, err := statFields(stat)
	if err != nil {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	var p procInfo
	p.state = f[0][0]
	p.ppid, _ = strconv.Atoi(string(f[1]))
	p.utime, _ = strconv.ParseUint(string(f[11]), 10, 64)
	p.stime, _ = strconv.ParseUint(string(f[12]), 10, 64)
	return p, nil
}

// live reports whether pid exists and is not a zombie.
func live(pid int) bool {
	p, err := readProcInfo(pid)
	return err == nil && p.state != 'Z' && p.state != 'X'
}

// descendants returns the live descendants of the roots (the roots
// excluded), from every thread's children list.
func descendants(roots ...int) []int {
	seen := map[int]bool{}
	queue := append([]int(nil), roots...)
	for _, r := range roots {
		seen[r] = true
	}
	var out []int
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		kids, _ := childrenOf(pid)
		for _, k := range kids {
			if seen[k] {
				continue
			}
			seen[k] = true
			queue = append(queue, k)
			if live(k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// runsExe reports whether pid is alive and runs the executable exe (as
// /proc/PID/exe names it: the real path of the binary).
func runsExe(pid int, exe string) bool {
	got, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && got == exe && live(pid)
}

// descendsFrom reports whether pid's chain of parents reaches one of roots.
func descendsFrom(pid int, roots []int) bool {
	for range 32 {
		p, err := readProcInfo(pid)
		if err != nil || p.ppid <= 1 {
			return false
		}
		for _, r := range roots {
			if p.ppid == r {
				return true
			}
		}
		pid = p.ppid
	}
	return false
}

// treeCensus splits a supervisor's live process tree into the sleep
// children and everything else (the supervisor and its helpers).
type treeCensus struct {
	sleeps  []int
	helpers []int // the roots included
}

// censusOf takes the census of the trees under roots.
func censusOf(roots []int, sleepExe string) treeCensus {
	var c treeCensus
	for _, r := range roots {
		if live(r) {
			c.helpers = append(c.helpers, r)
		}
	}
	for _, pid := range descendants(roots...) {
		if runsExe(pid, sleepExe) {
			c.sleeps = append(c.sleeps, pid)
		} else {
			c.helpers = append(c.helpers, pid)
		}
	}
	return c
}

// pssKiB returns the proportional set size of pid from
// /proc/PID/smaps_rollup: private pages count whole, shared ones divided by
// the number of processes that map them.
func pssKiB(pid int) (uint64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/smaps_rollup has no Pss line", pid)
}

// sumPSS adds up the PSS of pids; processes that vanished meanwhile count
// nothing and are counted in gone.
func sumPSS(pids []int) (kib uint64, gone int) {
	for _, pid := range pids {
		v, err := pssKiB(pid)
		if err != nil {
			gone++
			continue
		}
		kib += v
	}
	return kib, gone
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time pid has used: the sum of its threads'
// run time from /proc/PID/task/*/schedstat (nanoseconds), or, where the
// kernel has no schedstat, utime+stime from /proc/PID/stat (10 ms ticks).
func cpuTime(pid int) (time.Duration, error) {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	var sum time.Duration
	var buf [128]byte
	read := 0
	for _, t := range tasks {
		b, err := readInto(t, buf[:])
		if err != nil {
			continue
		}
		f := bytes.Fields(b)
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			continue
		}
		sum += time.Duration(ns)
		read++
	}
	if read > 0 {
		return sum, nil
	}
	p, err := readProcInfo(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(p.utime+p.stime) * clockTick, nil
}

// sumCPU adds up cpuTime over pids, keyed by PID so that two samples can be
// compared process by process.
func sumCPU(pids []int) map[int]time.Duration {
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		if d, err := cpuTime(pid); err == nil {
			out[pid] = d
		}
	}
	return out
}

// monoNow reads CLOCK_MONOTONIC in nanoseconds: the clock of the kernel's
// process events, so that both ends of a measurement share it.
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// sigIgnored reports whether pid ignores every signal of mask (bit n-1
// for signal n), from the SigIgn line of /proc/PID/status.
func sigIgnored(pid int, mask uint64) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			ign, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && ign&mask == mask
		}
	}
	return false
}

// sigBit is the SigIgn/SigCgt bit of a signal.
func sigBit(sig unix.Signal) uint64 { return 1 << (uint(sig) - 1) }
