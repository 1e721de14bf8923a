package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// guestWants says which of the guest's namespaces a probe joins.
type guestWants struct {
	net   bool // its network namespace (disable_network)
	pid   bool // its PID namespace (new_pid_ns)
	mount bool // its root, as seen in its mount namespace (new_pid_ns)
}

// guestProc is a box's guest, found as the only child of its shim and held
// by a pidfd, with the namespace files a probe joins opened while the pidfd
// proved it alive: they belong to that process even if it exits later.
type guestProc struct {
	pid   int
	pidfd int
	netNS *os.File // /proc/PID/ns/net, when wanted
	pidNS *os.File // /proc/PID/ns/pid, when wanted
	root  *os.File // /proc/PID/root (O_PATH), when wanted
}

// findGuest finds the guest of the shim shim: the shim's only child,
// listed in /proc/SHIM/task/*/children (the reference shim forks its guest
// from whichever of its threads runs the fork, not always the leader), or found by a scan of /proc
// where the kernel lacks that file. It opens a pidfd for it, then checks
// that its parent is still the shim and that the shim is the process the
// caller verified (its identity), so that a recycled PID can neither pass
// for the guest nor for the shim. A namespace wanted must differ from the
// supervisor's own: the guest is then known to be the confined process,
// not a stray child.
//
// Any failure is an error for the probe, not a verdict: the guest may be
// between its fork and its exec, or the box may be exiting.
func findGuest(shim messages.Identity, want guestWants) (_ *guestProc, err error) {
	if shim.PID <= 0 {
		return nil, errors.New("no shim identity to find the guest by")
	}
	kids, err := childrenOf(shim.PID)
	if err != nil {
		return nil, fmt.Errorf("listing the shim's children: %w", err)
	}
	if len(kids) != 1 {
		return nil, fmt.Errorf("the shim (pid %d) has %d children, want its guest alone", shim.PID, len(kids))
	}
	g := &guestProc{pid: kids[0], pidfd: -1}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	if g.pidfd, err = unix.PidfdOpen(g.pid, 0); err != nil {
		return nil, fmt.Errorf("opening the guest (pid %d): %w", g.pid, err)
	}
	ppid, err := parentOf(g.pid)
	if err != nil {
		return nil, err
	}
	if ppid != shim.PID {
		return nil, fmt.Errorf("pid %d is no longer the shim's child", g.pid)
	}
	if got, err := shimproc.ReadIdentity(shim.PID); err != nil || got != shim {
		return nil, fmt.Errorf("the shim (pid %d) is not the recorded process any more", shim.PID)
	}
	proc := "/proc/" + strconv.Itoa(g.pid)
	open := func(name string, flags int, kind int) (*os.File, error) {
		fd, err := unix.Open(filepath.Join(proc, name), flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening the guest's %s: %w", name, err)
		}
		f := os.NewFile(uintptr(fd), filepath.Join(proc, name))
		if kind != 0 && sameNamespace(f, kind) {
			_ = f.Close()
			return nil, fmt.Errorf("the guest (pid %d) does not run in a %s namespace of its own", g.pid, filepath.Base(name))
		}
		return f, nil
	}
	if want.net {
		if g.netNS, err = open("ns/net", unix.O_RDONLY, unix.CLONE_NEWNET); err != nil {
			return nil, err
		}
	}
	if want.pid {
		if g.pidNS, err = open("ns/pid", unix.O_RDONLY, unix.CLONE_NEWPID); err != nil {
			return nil, err
		}
	}
	if want.mount {
		if g.root, err = open("root", unix.O_PATH|unix.O_DIRECTORY, 0); err != nil {
			return nil, err
		}
	}
	// Alive now, so every file above was opened from this very process.
	if err := unix.PidfdSendSignal(g.pidfd, 0, nil, 0); err != nil {
		return nil, fmt.Errorf("the guest (pid %d) exited: %w", g.pid, err)
	}
	return g, nil
}

// close releases the guest's files.
func (g *guestProc) close() {
	for _, f := range []*os.File{g.netNS, g.pidNS, g.root} {
		if f != nil {
			_ = f.Close()
		}
	}
	if g.pidfd >= 0 {
		_ = unix.Close(g.pidfd)
		g.pidfd = -1
	}
}

// sameNamespace reports whether the namespace file f (of type kind) is the
// supervisor's own namespace of that type: the calling thread's, which is
// never one that joined a box's (those threads run nothing else).
func sameNamespace(f *os.File, kind int) bool {
	name := map[int]string{unix.CLONE_NEWNET: "net", unix.CLONE_NEWPID: "pid"}[kind]
	var ours, theirs unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/"+name, &ours) != nil || unix.Fstat(int(f.Fd()), &theirs) != nil {
		return false
	}
	return ours.Dev == theirs.Dev && ours.Ino == theirs.Ino
}

// dialInNetNS dials from inside the guest's network namespace. A socket
// belongs to the namespace of the thread that creates it, so the dial runs
// on a disposable thread (onDisposableThread) that joins the namespace
// first. addr must be an IP literal or
// localhost (Supported): a name would be resolved on other threads, in the
// host's namespace.
func (g *guestProc) dialInNetNS(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && strings.EqualFold(host, "localhost") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	type dialed struct {
		conn net.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	onDisposableThread(func() {
		if err := unix.Setns(int(g.netNS.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- dialed{nil, fmt.Errorf("joining the box's network namespace: %w", err)}
			return
		}
		conn, err := (&net.Dialer{FallbackDelay: -1}).DialContext(ctx, network, addr)
		ch <- dialed{conn, err}
	})
	d := <-ch
	return d.conn, d.err
}

// childrenOf lists the children of pid, from every thread's children file
// (the kernel's CONFIG_PROC_CHILDREN), or by a scan of /proc without it.
func childrenOf(pid int) ([]int, error) {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, task := range tasks {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/children")
		if errors.Is(err, fs.ErrNotExist) {
			if _, statErr := os.Stat("/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/children"); errors.Is(statErr, fs.ErrNotExist) {
				return scanChildren(pid) // the kernel has no children files
			}
			continue // the thread ended
		}
		if err != nil {
			return nil, err
		}
		for _, f := range strings.Fields(string(raw)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// scanChildren finds the children of pid by reading every process's parent.
func scanChildren(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, err := parentOf(n); err == nil && ppid == pid {
			out = append(out, n)
		}
	}
	return out, nil
}

// parentOf reads the parent of pid from /proc/PID/stat (field 4).
func parentOf(pid int) (int, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := bytes.Fields(raw[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return strconv.Atoi(string(f[1]))
}
