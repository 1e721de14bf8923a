package shim_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// guestReport is what a guest got from the shim, as the guest itself sees
// it: identity, limits, isolation and environment.
type guestReport struct {
	UID, GID     int
	Groups       []int
	NoFile       [2]uint64 // soft, hard
	FSize        [2]uint64
	NProc        [2]uint64
	NoNewPrivs   string // /proc/self/status
	Seccomp      string // /proc/self/status
	PID          int
	ProcPIDs     []int    // numeric entries of /proc
	Interfaces   []string // "name" or "name:down"
	LoopbackTalk string   // "" when a TCP round trip over 127.0.0.1 worked
	Personality  string   // result of selecting ADDR_NO_RANDOMIZE: "ok" or the errno
	Clone3       string   // result of a malformed clone3: the errno
	BigWrite     string   // result of writing 2 MiB: "ok" or the error
	Env          []string
	Cwd          string
}

// writeGuestReport fills a guestReport about this process and writes it to
// out. It runs as a box's guest (helper mode "report").
func writeGuestReport(out string) int {
	var r guestReport
	r.UID, r.GID = os.Getuid(), os.Getgid()
	r.Groups, _ = os.Getgroups()
	for res, dst := range map[int]*[2]uint64{unix.RLIMIT_NOFILE: &r.NoFile, unix.RLIMIT_FSIZE: &r.FSize, unix.RLIMIT_NPROC: &r.NProc} {
		var lim unix.Rlimit
		if unix.Getrlimit(res, &lim) == nil {
			*dst = [2]uint64{lim.Cur, lim.Max}
		}
	}
	r.NoNewPrivs, r.Seccomp = statusField("NoNewPrivs"), statusField("Seccomp")
	r.PID = os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			r.ProcPIDs = append(r.ProcPIDs, pid)
		}
	}
	ifaces, _ := net.Interfaces()
	for _, i := range ifaces {
		name := i.Name
		if i.Flags&net.FlagUp == 0 {
			name += ":down"
		}
		r.Interfaces = append(r.Interfaces, name)
	}
	r.LoopbackTalk = loopbackRoundTrip()
	r.Personality = "ok"
	const addrNoRandomize = 0x0040000
	if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, addrNoRandomize, 0, 0); errno != 0 {
		r.Personality = errno.Error()
	} else {
		_, _, _ = unix.Syscall(unix.SYS_PERSONALITY, 0, 0, 0)
	}
	_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	r.Clone3 = errno.Error()
	r.BigWrite = bigWrite()
	r.Env = os.Environ()
	r.Cwd, _ = os.Getwd()
	b, err := json.Marshal(r)
	if err == nil {
		err = os.WriteFile(out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	return 0
}

// statusField returns a field of /proc/self/status ("" when absent).
func statusField(name string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loopbackRoundTrip sends a byte over TCP on 127.0.0.1 and returns "" when it
// came back, else what failed.
func loopbackRoundTrip() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "listen: " + err.Error()
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = io.Copy(c, c)
			_ = c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	if _, err := c.Write([]byte{7}); err != nil {
		return "write: " + err.Error()
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return "read: " + err.Error()
	}
	return ""
}

// bigWrite writes 2 MiB to a file in the working directory (then removes
// it). Go ignores SIGXFSZ, so a write beyond RLIMIT_FSIZE fails with EFBIG
// instead of killing the guest.
func bigWrite() string {
	f, err := os.CreateTemp(".", "big-")
	if err != nil {
		return "create: " + err.Error()
	}
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = f.Write(make([]byte, 2<<20))
	var errno unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return errno.Error()
	default:
		return err.Error()
	}
}

var (
	guestHelperOnce sync.Once
	guestHelperPath string
	guestHelperErr  error
)

// guestHelper returns a copy of this test binary that any user can execute
// (the build directory is root's alone), for guests that run as another
// uid. The copy lives in a directory that TestMain removes.
func guestHelper(t *testing.T) string {
	t.Helper()
	guestHelperOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			guestHelperErr = err
			return
		}
		dir := filepath.Join(filepath.Dir(shimBinary), "guest")
		if err := os.MkdirAll(dir, 0o755); err == nil {
			err = os.Chmod(filepath.Dir(shimBinary), 0o755)
		}
		if err != nil {
			guestHelperErr = err
			return
		}
		b, err := os.ReadFile(self)
		if err != nil {
			guestHelperErr = err
			return
		}
		guestHelperPath = filepath.Join(dir, "guest-helper")
		guestHelperErr = os.WriteFile(guestHelperPath, b, 0o755)
	})
	if guestHelperErr != nil {
		t.Fatalf("guest helper: %v", guestHelperErr)
	}
	return guestHelperPath
}

// openDir returns a fresh directory that any user may enter and write to:
// the work directory of a guest that runs as another uid.
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's parent is the test's own directory, root's alone too.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireNamespace skips a test when this kernel or sandbox cannot create
// the namespace kind ("pid", "net", "mnt").
func requireNamespace(t *testing.T, kind string) {
	t.Helper()
	testutil.RequireRoot(t, "the shim can only change a guest's identity or create namespaces as root")
	if _, err := os.Stat("/proc/self/ns/" + kind); err != nil {
		t.Skipf("the kernel offers no %s namespaces (%v)", kind, err)
	}
}

// requireSeccomp skips a test when the kernel has no seccomp filters.
func requireSeccomp(t *testing.T) {
	t.Helper()
	if statusField("Seccomp") == "" {
		t.Skip("the kernel has no seccomp (no Seccomp line in /proc/self/status)")
	}
}

// reportSpec is a spec whose guest is the report helper writing to
// dir/report.json, in dir.
func reportSpec(t *testing.T, dir, id string) messages.InstanceSpec {
	t.Helper()
	spec := newSpec(dir, id, guestHelper(t), filepath.Join(dir, "report.json"))
	spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, helperEnv+"="+helperReport, noRaceExitSleep)
	return spec
}

// runReport runs spec's report guest to its end and returns its report;
// the shim must have become ready and exited 0.
func runReport(t *testing.T, dir string, spec messages.InstanceSpec) guestReport {
	t.Helper()
	r := startShim(t, dir, spec, launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; shim log:\n%s", r.log())
	}
	if code := r.wait(); code != 0 {
		t.Fatalf("shim exit code = %d, want 0; log:\n%s\nconsole:\n%s", code, r.log(), readFile(t, spec.ConsoleOutput))
	}
	var rep guestReport
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "report.json"))), &rep); err != nil {
		t.Fatalf("report: %v; console:\n%s", err, readFile(t, spec.ConsoleOutput))
	}
	return rep
}

// hasEnv reports whether env holds the entry kv.
func hasEnv(env []string, kv string) bool { return slices.Contains(env, kv) }
