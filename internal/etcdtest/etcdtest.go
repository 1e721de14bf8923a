// Package etcdtest starts a real, throw-away etcd for tests: one member on
// loopback ports, its data in a temporary directory, stopped and removed
// when the test ends. Tests skip with a reason where no etcd binary exists
// (.ci/run installs Debian's etcd-server).
package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// startDeadline bounds how long a fresh etcd may take to answer; on a busy
// 2-core machine a start takes about a second.
const startDeadline = 30 * time.Second

// Server is one running etcd.
type Server struct {
	// Endpoint is the client URL, http://HOST:PORT.
	Endpoint string

	cmd    *exec.Cmd
	dir    string
	waited chan struct{}
	output *lockedBuffer

	stopOnce sync.Once
}

// Binary returns the etcd binary's path, or skips the test with a reason.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BOXSUP_ETCD"); p != "" {
		return p
	}
	p, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd not found on PATH (install Debian's etcd-server, as .ci/run does, or set BOXSUP_ETCD)")
	}
	return p
}

// Start runs etcd for this test on loopback and stops it (and removes its
// data) in t.Cleanup. It retries on a port taken between choosing and
// binding.
func Start(t testing.TB) *Server { return StartOn(t, "127.0.0.1") }

// StartOn is Start with etcd listening on host (an address of this
// network namespace), for tests that reach it through interfaces they made.
func StartOn(t testing.TB, host string) *Server {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(bin, host)
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("etcd did not start: %v", lastErr)
	return nil
}

func start(bin, host string) (*Server, error) {
	clientPort, err := freePort(host)
	if err != nil {
		return nil, err
	}
	peerPort, err := freePort(host)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(memoryDir(), "boxsup-etcd-")
	if err != nil {
		return nil, err
	}
	client := "http://" + net.JoinHostPort(host, strconv.Itoa(clientPort))
	peer := "http://" + net.JoinHostPort(host, strconv.Itoa(peerPort))
	cmd := exec.Command(bin,
		"--name", "boxsup-test",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "boxsup-test="+peer,
		"--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "error",
	)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// The kernel kills etcd if the test binary dies first: no leftover.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Endpoint: client, cmd: cmd, dir: dir, waited: make(chan struct{}), output: out}
	go func() { _ = cmd.Wait(); close(s.waited) }()
	if err := s.eventuallyServing(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; etcd said: %s", err, out.String())
	}
	return s, nil
}

// eventuallyServing polls until etcd answers a read, or fails at the
// deadline or when etcd exits.
func (s *Server) eventuallyServing() error {
	deadline := time.Now().Add(startDeadline)
	for time.Now().Before(deadline) {
		select {
		case <-s.waited:
			return errors.New("etcd exited during start")
		default:
		}
		cli, err := s.newClient()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Get(ctx, "boxsup-probe")
			cancel()
			_ = cli.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("etcd did not answer before the deadline")
}

// Client returns a client of this server, closed at the test's end.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := s.newClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (s *Server) newClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{s.Endpoint},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// Stop terminates etcd (SIGTERM, then SIGKILL after 10 s), waits for it and
// removes its data directory. It is idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.waited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.waited
		}
		_ = os.RemoveAll(s.dir)
	})
}

// Output returns what etcd printed, for a failing test's message.
func (s *Server) Output() string { return s.output.String() }

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// memoryDir is where etcd keeps its data: /dev/shm when it is a writable
// tmpfs, else the default temporary directory. etcd 3.4 fsyncs its WAL on
// every write and cannot be told not to; on a disk that other tests keep
// busy an fsync can stall for seconds, longer than the 2 s leases of the
// cluster tests, and a stalled etcd expires every member's lease at once.
func memoryDir() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err == nil && st.Type == unix.TMPFS_MAGIC && unix.Access("/dev/shm", unix.W_OK) == nil {
		return "/dev/shm"
	}
	return ""
}
