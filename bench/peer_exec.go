package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procs runs the peers' commands and daemons and cleans up after them. The
// benchmark process is a child subreaper while the peers run, so that every
// process a peer leaves behind (a daemon that double-forks, the children of
// a supervisor killed with SIGKILL) is re-parented to it instead of to PID 1
// — which on some machines never reaps — and can be found, signalled by PID
// and reaped. Zombies of commands it runs itself are left to os/exec: the
// reaper never waits for a PID it owns.
type procs struct {
	mu    sync.Mutex
	owned map[int]bool
}

func newProcs() *procs { return &procs{owned: map[int]bool{}} }

// becomeSubreaper makes this process the reaper of its orphaned
// descendants; the returned function undoes it.
func becomeSubreaper() (func(), error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }, nil
}

// start starts cmd and records its PID as owned until wait.
func (p *procs) start(cmd *exec.Cmd) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	p.owned[cmd.Process.Pid] = true
	return nil
}

// wait waits for cmd and forgets its PID.
func (p *procs) wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	p.mu.Lock()
	delete(p.owned, cmd.Process.Pid)
	p.mu.Unlock()
	return err
}

// reapOrphans reaps the zombies among this process's children that it did
// not start itself (orphans re-parented to the subreaper).
func (p *procs) reapOrphans() {
	p.mu.Lock()
	defer p.mu.Unlock()
	kids, _ := childrenOf(os.Getpid())
	for _, pid := range kids {
		if p.owned[pid] {
			continue
		}
		if info, err := readProcInfo(pid); err == nil && info.state == 'Z' {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// strays returns the live descendants of this process that it did not
// start itself and that are not in keep: what the peers left behind.
func (p *procs) strays(keep map[int]bool) []int {
	p.mu.Lock()
	owned := make(map[int]bool, len(p.owned))
	for pid := range p.owned {
		owned[pid] = true
	}
	p.mu.Unlock()
	var out []int
	for _, pid := range descendants(os.Getpid()) {
		if !owned[pid] && !keep[pid] {
			out = append(out, pid)
		}
	}
	return out
}

// killStrays SIGKILLs every stray (through a pidfd, so a recycled PID is
// never hit), reaps them and returns their descriptions. Strays are killed
// until none is left: a supervisor killed first may have restarted a child
// meanwhile, so the loop repeats until a walk finds nothing.
func (p *procs) killStrays(keep map[int]bool) []string {
	var out []string
	for range 20 {
		pids := p.strays(keep)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			desc := describePID(pid)
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				continue
			}
			if unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) == nil {
				out = append(out, desc)
			}
			unix.Close(fd)
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && anyLive(pids) {
			p.reapOrphans()
			time.Sleep(5 * time.Millisecond)
		}
	}
	p.reapOrphans()
	return out
}

// anyLive reports whether any of pids is alive.
func anyLive(pids []int) bool {
	for _, pid := range pids {
		if live(pid) {
			return true
		}
	}
	return false
}

// describePID names a process for a report line: PID and command line.
func describePID(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	cmd := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	if len(cmd) > 80 {
		cmd = cmd[:80] + "…"
	}
	return fmt.Sprintf("pid %d (%s)", pid, cmd)
}

// command builds a command of a peer: run in dir, its output appended to
// dir/logName, with the environment given added to ours.
func command(dir, logName string, env []string, name string, args ...string) (*exec.Cmd, *os.File, error) {
	log, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	return cmd, log, nil
}

// run runs a peer's command to its end, within timeout; a failure carries
// the end of its log.
func (p *procs) run(ctx context.Context, timeout time.Duration, dir, logName string, env []string, name string, args ...string) error {
	cmd, log, err := command(dir, logName, env, name, args...)
	if err != nil {
		return err
	}
	defer log.Close()
	off, _ := log.Seek(0, 1)
	if err := p.start(cmd); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	err = p.wait(cmd)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("%s %s: %w%s", filepath.Base(name), shortArgs(args), err, logTail(log.Name(), off))
	}
	return nil
}

// shortArgs prints a command's arguments, shortened for error messages.
func shortArgs(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// logTail returns the last lines a command wrote to its log after off.
func logTail(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= off {
		return ""
	}
	b = bytes.TrimSpace(b[off:])
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return ": " + string(b)
}

// daemon is a long-running peer process this benchmark started.
type daemon struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// startDaemon starts a peer's long-running process.
func (p *procs) startDaemon(dir, logName string, env []string, name string, args ...string) (*daemon, error) {
	cmd, log, err := command(dir, logName, env, name, args...)
	if err != nil {
		return nil, err
	}
	if err := p.start(cmd); err != nil {
		log.Close()
		return nil, err
	}
	d := &daemon{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		d.err = p.wait(cmd)
		log.Close()
		close(d.done)
	}()
	return d, nil
}

// pid is the daemon's PID.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// exited reports whether the daemon has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to timeout for the daemon to end.
func (d *daemon) waitExit(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.done:
		return nil
	case <-t.C:
		return fmt.Errorf("%s (pid %d) still running after %v", filepath.Base(d.cmd.Path), d.pid(), timeout)
	}
}

// signal sends sig to the daemon (os.Process signals through its pidfd).
func (d *daemon) signal(sig syscall.Signal) error {
	if d.exited() {
		return nil
	}
	err := d.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// terminate sends sig and waits up to timeout, then SIGKILLs.
func (d *daemon) terminate(sig syscall.Signal, timeout time.Duration) error {
	if err := d.signal(sig); err != nil {
		return err
	}
	if err := d.waitExit(timeout); err != nil {
		_ = d.signal(syscall.SIGKILL)
		_ = d.waitExit(5 * time.Second)
		return err
	}
	return nil
}

// forEach runs fn for 0..n-1 on up to par goroutines and joins the errors
// (the first few, with the count).
func forEach(n, par int, fn func(i int) error) error {
	var mu sync.Mutex
	var errs []error
	next := 0
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return firstErrors(errs)
}

// pollUntil calls ok every interval until it reports true or timeout
// passes.
func pollUntil(timeout, interval time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}
