package shimproc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// clockTicksPerSecond is USER_HZ, the unit of /proc/PID/stat's start time. It
// is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) would
// need cgo to ask).
const clockTicksPerSecond = 100

// procStat is the part of /proc/PID/stat shimproc needs.
type procStat struct {
	State     byte   // R, S, D, Z, ...
	PPID      int    // field 4
	PGID      int    // field 5
	StartTime uint64 // field 22: clock ticks since boot
}

// zombie reports whether the process has exited and waits to be reaped.
func (s procStat) zombie() bool { return s.State == 'Z' || s.State == 'X' }

// readProcStat parses /proc/PID/stat. A missing process gives an error that
// wraps ErrGone.
func readProcStat(pid int) (procStat, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return procStat{}, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return procStat{}, fmt.Errorf("reading /proc/%d/stat: %w", pid, err)
	}
	return parseProcStat(pid, raw)
}

// parseProcStat parses the text of /proc/PID/stat. The command name (field 2)
// may hold spaces and parentheses, so the fields are counted from after the
// last ')'.
func parseProcStat(pid int, raw []byte) (procStat, error) {
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 || end+2 > len(raw) {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	// rest[0] is field 3 (state), so field N is rest[N-3].
	rest := strings.Fields(string(raw[end+2:]))
	if len(rest) < 20 || len(rest[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed (%d fields)", pid, len(rest)+2)
	}
	ppid, err1 := strconv.Atoi(rest[4-3])
	pgid, err2 := strconv.Atoi(rest[5-3])
	start, err3 := strconv.ParseUint(rest[22-3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed: %w", pid, err)
	}
	return procStat{State: rest[0][0], PPID: ppid, PGID: pgid, StartTime: start}, nil
}

// bootID reads the kernel's boot id once: it cannot change while we run.
var bootID = sync.OnceValues(func() (string, error) {
	raw, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading boot id: %w", err)
	}
	id := strings.TrimSpace(string(raw))
	if id == "" {
		return "", errors.New("reading boot id: /proc/sys/kernel/random/boot_id is empty")
	}
	return id, nil
})

// ReadIdentity returns the identity of the running process pid: its start time
// (field 22 of /proc/PID/stat, clock ticks since boot) and the boot id. A
// missing process gives an error wrapping ErrGone. Read a process's identity
// only while holding a pidfd for it (or as its unreaped parent), or the PID may
// have been recycled between the read and its use.
func ReadIdentity(pid int) (messages.Identity, error) {
	if pid <= 0 {
		return messages.Identity{}, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	st, err := readProcStat(pid)
	if err != nil {
		return messages.Identity{}, err
	}
	boot, err := bootID()
	if err != nil {
		return messages.Identity{}, err
	}
	return messages.Identity{PID: pid, StartTime: st.StartTime, BootID: boot}, nil
}

// startTimeToWall converts a start time in clock ticks since boot into wall
// clock time. The kernel counts start times on CLOCK_BOOTTIME, so the offset
// is taken from that clock (10 ms resolution, from the tick unit).
func startTimeToWall(ticks uint64) time.Time {
	now := time.Now()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return now
	}
	sinceBoot := time.Duration(ts.Nano())
	startSinceBoot := time.Duration(ticks) * (time.Second / clockTicksPerSecond)
	if startSinceBoot > sinceBoot {
		return now
	}
	return now.Add(-(sinceBoot - startSinceBoot))
}
