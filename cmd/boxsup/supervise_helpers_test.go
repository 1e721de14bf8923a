package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
)

// superviseProc is a running `boxsup supervise`.
type superviseProc struct {
	t           *testing.T
	cmd         *exec.Cmd
	log         *testutil.SyncBuffer
	done        chan struct{}
	waitErr     error
	metricsAddr string
	socket      string
}

// startSupervise starts boxsup supervise on home with JSON logs at debug and
// returns once it logged that it is supervising.
func startSupervise(t *testing.T, home string, args ...string) *superviseProc {
	t.Helper()
	all := append([]string{"--home", home, "--log-format", "json", "--log-level", "debug", "supervise"}, args...)
	cmd := exec.Command(boxsupBin, all...)
	log := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &superviseProc{t: t, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("supervise (pid %d) log:\n%s", cmd.Process.Pid, log.String())
		}
	})
	eventually(t, "boxsup supervise to report that it is supervising", func() bool {
		if p.exited() {
			t.Fatalf("boxsup supervise exited: %v\n%s", p.waitErr, log.String())
		}
		line, ok := p.logLine("supervising")
		if ok {
			p.metricsAddr, _ = line["metrics_addr"].(string)
			p.socket, _ = line["socket"].(string)
		}
		return ok
	})
	return p
}

// logLine returns the first JSON log line whose msg is msg.
func (p *superviseProc) logLine(msg string) (map[string]any, bool) {
	sc := bufio.NewScanner(strings.NewReader(p.log.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			return line, true
		}
	}
	return nil, false
}

func (p *superviseProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for the supervisor to exit.
func (p *superviseProc) stop() {
	p.signalAndWait(syscall.SIGTERM)
}

// kill sends SIGKILL and waits: the supervisor dies without any cleanup.
func (p *superviseProc) kill() {
	p.signalAndWait(syscall.SIGKILL)
}

func (p *superviseProc) signalAndWait(sig syscall.Signal) {
	p.t.Helper()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(waitDeadline):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("boxsup supervise ignored %s for %s", sig, waitDeadline)
	}
}

// pid returns the supervisor's pid.
func (p *superviseProc) pid() int { return p.cmd.Process.Pid }
