package layout

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// lockHelperEnv, when set to a home root, turns the test binary into a helper
// process that tries Home.Lock: it prints "LOCKED" and holds the lock until
// its stdin closes (exit 0), or prints "ERR <error>" and exits 3 when the home
// is locked (1 on any other error).
const lockHelperEnv = "BOXSUP_LAYOUT_LOCK_HELPER"

func runLockHelper(root string) int {
	h, err := Open(root)
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	l, err := h.Lock()
	if err != nil {
		fmt.Println("ERR", err)
		if errors.Is(err, messages.ErrHomeLocked) {
			return 3
		}
		return 1
	}
	fmt.Println("LOCKED")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = l.Release()
	return 0
}

// lockHelper is a running helper process.
type lockHelper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{} // closed when the output reader has seen EOF
}

// startLockHelper runs the helper against root. It is killed and reaped at
// the end of the test.
func startLockHelper(t *testing.T, root string) *lockHelper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+root)
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
	h := &lockHelper{cmd: cmd, stdin: stdin, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = h.wait()
		}
	})
	return h
}

// wait reaps the helper once it has exited and its output is drained (the
// reader must see EOF before Wait closes the pipe).
func (h *lockHelper) wait() error {
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
	return h.cmd.Wait()
}

// nextLine waits (up to 10 s) for the helper's next output line.
func (h *lockHelper) nextLine(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			t.Fatal("lock helper exited without output")
		}
		return line
	case <-time.After(10 * time.Second):
		t.Fatal("lock helper printed nothing within 10 s")
	}
	return ""
}

func TestLockExcludesSecondLockInSameProcess(t *testing.T) {
	home := openHome(t)
	l, err := home.Lock()
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	_, err = home.Lock()
	if !errors.Is(err, messages.ErrHomeLocked) {
		t.Fatalf("second Lock = %v, want ErrHomeLocked", err)
	}
	want := "held by pid " + strconv.Itoa(os.Getpid())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), home.LockPath()) {
		t.Errorf("second Lock error %q does not name the lock file and %q", err, want)
	}
	// A second Home value for the same root is no different.
	other, err := Open(home.Root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Lock(); !errors.Is(err, messages.ErrHomeLocked) {
		t.Fatalf("Lock through another Home = %v, want ErrHomeLocked", err)
	}

	if err := l.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release = %v, want nil", err)
	}
	l2, err := home.Lock()
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	defer l2.Release()
}

func TestLockFileHoldsPidWithMode0600(t *testing.T) {
	withUmask(t, 0o277) // would create it 0400 without the explicit chmod
	home := openHome(t)
	l, err := home.Lock()
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, home.LockPath(), 0o600)
	b, err := os.ReadFile(home.LockPath())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), strconv.Itoa(os.Getpid())+"\n"; got != want {
		t.Errorf("lock file holds %q, want %q", got, want)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(home.LockPath()); len(b) != 0 {
		t.Errorf("lock file after Release holds %q, want it empty", b)
	}
}

func TestLockHeldWithoutPidSaysUnknown(t *testing.T) {
	home := openHome(t)
	l, err := home.Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	// The moment between another holder's flock and its pid write.
	if err := os.Truncate(home.LockPath(), 0); err != nil {
		t.Fatal(err)
	}
	_, err = home.Lock()
	if !errors.Is(err, messages.ErrHomeLocked) || !strings.Contains(err.Error(), "pid unknown") {
		t.Fatalf("Lock = %v, want ErrHomeLocked saying the pid is unknown", err)
	}
}

// TestLockReleasedButStillReferencedIsTakenOnceFree: a process forked just
// before the holder released (a shim being spawned by another goroutine)
// keeps the released lock until its exec closes its copy of the
// descriptor; a Lock in that moment waits for it rather than failing (CI
// saw a test's next supervisor refused so). Not parallel: it sets the
// package's retry hook.
func TestLockReleasedButStillReferencedIsTakenOnceFree(t *testing.T) {
	home := openHome(t)
	l, err := home.Lock()
	if err != nil {
		t.Fatal(err)
	}
	child, err := unix.Dup(int(l.f.Fd())) // what a forked child holds until its exec
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	var retries []int
	lockRetried = func(attempt int) {
		retries = append(retries, attempt)
		if attempt == 2 {
			_ = unix.Close(child) // the child execs
		}
	}
	t.Cleanup(func() { lockRetried = nil })
	l2, err := home.Lock()
	if err != nil {
		t.Fatalf("Lock once the released lock's last copy closed: %v", err)
	}
	defer l2.Release()
	if len(retries) != 2 {
		t.Fatalf("retries %v; want two before the copy closed", retries)
	}
}

func TestLockAcrossProcesses(t *testing.T) {
	home := openHome(t)

	// This process holds the lock: the child is refused and told our pid.
	l, err := home.Lock()
	if err != nil {
		t.Fatal(err)
	}
	refused := startLockHelper(t, home.Root)
	line := refused.nextLine(t)
	if want := "held by pid " + strconv.Itoa(os.Getpid()); !strings.HasPrefix(line, "ERR ") || !strings.Contains(line, want) {
		t.Fatalf("helper said %q, want an error containing %q", line, want)
	}
	err = refused.wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("refused helper exit = %v, want exit status 3 (ErrHomeLocked)", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}

	// The child holds it: we are refused and told its pid.
	holder := startLockHelper(t, home.Root)
	if line := holder.nextLine(t); line != "LOCKED" {
		t.Fatalf("helper said %q, want LOCKED", line)
	}
	_, err = home.Lock()
	if want := "held by pid " + strconv.Itoa(holder.cmd.Process.Pid); !errors.Is(err, messages.ErrHomeLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Lock while the child holds it = %v, want ErrHomeLocked with %q", err, want)
	}

	// The holder dies without releasing: the kernel drops the lock.
	if err := holder.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = holder.wait()
	l, err = home.Lock()
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	assertNoChildren(t)
}

func TestLockIsNotInheritedByChildren(t *testing.T) {
	home := openHome(t)
	l, err := home.Lock()
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Skipf("cannot run sleep: %v", err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
		assertNoChildren(t)
	})
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	// Had the child inherited the descriptor, it would still hold the lock.
	l2, err := home.Lock()
	if err != nil {
		t.Fatalf("Lock after Release while a child spawned under the lock runs: %v", err)
	}
	defer l2.Release()
}
