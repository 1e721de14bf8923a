package shimproc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// ShimCheck says what makes a process a shim of a given box. A pid, even
// with a matching start time, is only signalled once it passes: state.json
// is input, and its identity can be copied from /proc for any process.
type ShimCheck struct {
	// Binaries are the shim executables boxes may run (the configured
	// engines); empty accepts any. A binary replaced since the shim started
	// still matches (its /proc/PID/exe reads "PATH (deleted)").
	Binaries []string
	// Cwd requires the process's working directory to be the box
	// directory, where every shim boxsup spawns runs (another home's shim
	// of a box with the same ID runs elsewhere).
	Cwd bool
}

// verifyShim checks that process pid runs `SHIM --box-id ID` for box (and,
// as chk says, from the box directory and one of the known binaries). Call
// it while holding a pidfd for pid, so that the pid cannot be recycled in
// between. A process that no longer exists gives an error wrapping ErrGone;
// one that is not a shim of the box messages.ErrIdentityMismatch; any other
// failure (EMFILE, EACCES, ...) is returned as it is: nothing is known.
func verifyShim(box layout.Box, pid int, chk ShimCheck) error {
	argv, err := readCmdline(pid)
	if err != nil {
		return err
	}
	if len(argv) != 3 || argv[1] != "--box-id" || argv[2] != box.ID {
		return messages.Errorf(messages.ErrIdentityMismatch, "box %s: pid %d is not a shim of this box (argv %q)", box.ID, pid, argv)
	}
	if chk.Cwd {
		cwd, err := os.Readlink(procPath(pid, "cwd"))
		if err != nil {
			return procErr(pid, "cwd", err)
		}
		if cwd != box.Dir {
			return messages.Errorf(messages.ErrIdentityMismatch, "box %s: pid %d runs in %q, not in the box directory", box.ID, pid, cwd)
		}
	}
	if len(chk.Binaries) > 0 {
		exe, err := os.Readlink(procPath(pid, "exe"))
		if err != nil {
			return procErr(pid, "exe", err)
		}
		if !knownBinary(strings.TrimSuffix(exe, " (deleted)"), chk.Binaries) {
			return messages.Errorf(messages.ErrIdentityMismatch, "box %s: pid %d runs %q, not a configured shim", box.ID, pid, exe)
		}
	}
	return nil
}

// knownBinary reports whether exe is one of the binaries (compared after
// resolving their symbolic links, as /proc/PID/exe shows the real file).
func knownBinary(exe string, binaries []string) bool {
	for _, b := range binaries {
		if b == exe {
			return true
		}
		if real, err := filepath.EvalSymlinks(b); err == nil && real == exe {
			return true
		}
	}
	return false
}

// readCmdline returns the argv of pid.
func readCmdline(pid int) ([]string, error) {
	raw, err := os.ReadFile(procPath(pid, "cmdline"))
	if err != nil {
		return nil, procErr(pid, "cmdline", err)
	}
	raw = bytes.TrimSuffix(raw, []byte{0})
	if len(raw) == 0 {
		return nil, nil // a zombie, or a kernel thread
	}
	return strings.Split(string(raw), "\x00"), nil
}

// environHas reports whether pid's initial environment holds kv exactly.
func environHas(pid int, kv string) (bool, error) {
	raw, err := os.ReadFile(procPath(pid, "environ"))
	if err != nil {
		return false, procErr(pid, "environ", err)
	}
	for _, entry := range bytes.Split(raw, []byte{0}) {
		if string(entry) == kv {
			return true, nil
		}
	}
	return false, nil
}

func procPath(pid int, name string) string { return "/proc/" + strconv.Itoa(pid) + "/" + name }

// procErr classifies an error reading /proc/PID/name: a process that is gone
// wraps ErrGone; anything else (EMFILE, EACCES, ENOMEM) stays itself, for the
// caller to treat as "could not verify", never as a verdict.
func procErr(pid int, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	return fmt.Errorf("reading /proc/%d/%s: %w", pid, name, err)
}

// IsVerdict reports whether err, from Adopt, AdoptPID or FindShim, is a fact
// about the process (it is gone, or it is not the box's shim) rather than a
// failure to find out (EMFILE, ENOMEM, EACCES while reading /proc): only a
// verdict may mark a box's process lost.
func IsVerdict(err error) bool {
	return errors.Is(err, ErrGone) || errors.Is(err, messages.ErrIdentityMismatch)
}

// cgroupUnder reports whether the cgroup directory dir lies under parent.
func cgroupUnder(dir, parent string) bool {
	return parent != "" && filepath.Clean(dir) == dir && strings.HasPrefix(dir, parent+"/")
}
