package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/etcdtest"
	"github.com/boxsup/boxsup/internal/testutil"
)

// Short node-loss timing, so that leases expire and fences happen within
// seconds (failover-after > fence-after + TTL, as Validate requires); etcd
// grants 2 s TTLs with its default election timeout.
const (
	leaseTTL      = 2 * time.Second
	fenceAfter    = 2 * time.Second
	failoverAfter = 5 * time.Second
)

// Generous bounds: tests wait on conditions; these only decide when a
// condition is declared never to come.
const (
	commandTimeout = 90 * time.Second
	waitDeadline   = 45 * time.Second
	pollInterval   = 50 * time.Millisecond
)

// markEnv marks every process a test starts (members, their shims, and the
// guests, through run -e markEnv), with a value of its own: the leftover
// scan of one test does not see another's.
const markEnv = "BOXSUP_CLUSTER_E2E_MARK"

// cluster is one test's cluster: an etcd, members, and a client
// configuration file.
type cluster struct {
	t       *testing.T
	dir     string
	mark    string
	name    string
	etcd    *etcdtest.Server
	members map[string]*member
	// memberTLS gives a member's transport flags; clientConfig is the
	// client's --cluster-config file.
	memberTLS    func(node string) []string
	clientConfig string
	// host is the address members advertise (port 0: chosen at start);
	// netns, when set, maps a member to the network namespace it runs in.
	host  func(node string) string
	netns map[string]string
}

// member is one `boxsup supervise` of the cluster.
type member struct {
	c    *cluster
	node string
	home string
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	done chan struct{}
	err  error
}

// newCluster starts etcd (on loopback unless etcdHost is given) and
// prepares the cluster's files; members start with startMember.
func newCluster(t *testing.T, etcdHost string) *cluster {
	t.Helper()
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	c := &cluster{t: t, dir: dir, mark: dir, name: "e2e", members: map[string]*member{},
		host: func(string) string { return "127.0.0.1" }}
	if etcdHost == "" {
		c.etcd = etcdtest.Start(t)
	} else {
		c.etcd = etcdtest.StartOn(t, etcdHost)
	}
	// Registered after etcd's cleanup, so it runs before it: the members
	// leave while etcd still answers.
	t.Cleanup(func() { assertNoLeftovers(t, c.mark) })
	t.Cleanup(c.tearDown)
	return c
}

// useTLS makes certificates with `boxsup cluster certs` for the members and
// a client named ops, all for host, and a client configuration file.
func (c *cluster) useTLS(host string, nodes ...string) {
	c.t.Helper()
	pki := filepath.Join(c.dir, "pki")
	args := []string{"cluster", "certs", "--dir", pki}
	for _, n := range append(nodes, "ops") {
		args = append(args, "--node", n+"="+host)
	}
	c.mustCLI(args...)
	c.memberTLS = func(node string) []string {
		return []string{"--tls-ca", filepath.Join(pki, "ca.pem"), "--tls-cert", filepath.Join(pki, node+".pem"), "--tls-key", filepath.Join(pki, node+".key")}
	}
	c.clientConfig = c.writeClientConfig("client.yaml", map[string]any{
		"tls_ca": filepath.Join(pki, "ca.pem"), "tls_cert": filepath.Join(pki, "ops.pem"), "tls_key": filepath.Join(pki, "ops.key"),
	})
}

// useInsecure makes the cluster plain text.
func (c *cluster) useInsecure() {
	c.memberTLS = func(string) []string { return []string{"--insecure-cluster"} }
	c.clientConfig = c.writeClientConfig("client.yaml", map[string]any{"insecure": true})
}

// writeClientConfig writes a client configuration file with the cluster's
// name and etcd, plus extra.
func (c *cluster) writeClientConfig(name string, extra map[string]any) string {
	c.t.Helper()
	cfg := map[string]any{"cluster": c.name, "etcd": []string{c.etcd.Endpoint}}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// startMember starts node's supervise (on a new home, or its home again)
// and waits until it takes boxes.
func (c *cluster) startMember(node string) *member {
	c.t.Helper()
	m := c.members[node]
	if m == nil {
		m = &member{c: c, node: node, home: filepath.Join(c.dir, "home-"+node)}
		c.members[node] = m
	}
	args := []string{"--home", m.home, "--log-format", "json", "--log-level", "debug",
		"--cluster", c.name, "--etcd", c.etcd.Endpoint}
	args = append(args, c.memberTLS(node)...)
	args = append(args, "supervise", "--node", node, "--advertise", c.host(node)+":0",
		"--lease-ttl", leaseTTL.String(), "--fence-after", fenceAfter.String(), "--failover-after", failoverAfter.String())
	m.cmd = exec.Command(boxsupBin, args...)
	m.cmd.Env = append(os.Environ(), markEnv+"="+c.mark)
	if ns := c.netns[node]; ns != "" {
		// Through this binary as a child that enters the namespace and
		// execs boxsup: unlike `ip netns exec`, it leaves the mount
		// namespace alone (ip remounts /sys, hiding the cgroup
		// hierarchies the member must see as the host does).
		exe, err := os.Executable()
		if err != nil {
			c.t.Fatal(err)
		}
		m.cmd = exec.Command(exe, append([]string{boxsupBin}, args...)...)
		m.cmd.Env = append(os.Environ(), markEnv+"="+c.mark, childEnv+"=netns", childNetnsEnv+"="+ns)
	}
	m.log = &testutil.SyncBuffer{}
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.done = make(chan struct{})
	if err := m.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func(cmd *exec.Cmd, done chan struct{}) {
		m.err = cmd.Wait()
		close(done)
	}(m.cmd, m.done)
	log := m.log
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.t.Logf("member %s (pid %d) log:\n%s", node, m.cmd.Process.Pid, filterLog(log.String()))
		}
	})
	m.waitLog("member ready: boxes reclaimed")
	return m
}

// filterLog drops the debug lines of a member's log, for a failing test's
// output.
func filterLog(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, `"level":"debug"`) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// waitLog waits until the member's log has a line with msg (since its
// latest start).
func (m *member) waitLog(msg string) {
	m.c.t.Helper()
	eventually(m.c.t, "member "+m.node+" to log "+msg, func() bool {
		select {
		case <-m.done:
			m.c.t.Fatalf("member %s exited: %v\n%s", m.node, m.err, m.log.String())
		default:
		}
		return m.hasLog(msg)
	})
}

// hasLog reports whether the member logged a line whose msg is msg.
func (m *member) hasLog(msg string) bool {
	sc := bufio.NewScanner(strings.NewReader(m.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			return true
		}
	}
	return false
}

// signal sends sig to the member's supervise and waits for it to exit.
func (m *member) signal(sig syscall.Signal) {
	m.c.t.Helper()
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(waitDeadline):
		_ = m.cmd.Process.Kill()
		<-m.done
		m.c.t.Errorf("member %s ignored %v", m.node, sig)
	}
}

// tearDown stops every member, then removes every box of every home
// (each home opened by the CLI itself, outside the cluster: copies left
// behind by a fail-over are removed too).
func (c *cluster) tearDown() {
	for _, m := range c.members {
		if m.cmd != nil {
			m.signal(syscall.SIGTERM)
		}
	}
	for _, m := range c.members {
		r := c.cli(nil, "--home", m.home, "ps", "-a", "--format", "json")
		var rows []psRow
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil {
			c.t.Errorf("cleanup: listing the boxes of %s: %s", m.node, r)
			continue
		}
		if len(rows) == 0 {
			continue
		}
		args := []string{"--home", m.home, "rm", "-f"}
		for _, row := range rows {
			args = append(args, row.ID)
		}
		if r := c.cli(nil, args...); r.code != 0 {
			c.t.Errorf("cleanup: removing the boxes of %s: %s", m.node, r)
		}
	}
}

// result is one finished boxsup command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs the boxsup binary with args (and the test's mark).
func (c *cluster) cli(extraEnv []string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, boxsupBin, args...)
	cmd.Env = append(append(os.Environ(), markEnv+"="+c.mark), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		c.t.Fatalf("running boxsup %v: %v", args, err)
	}
	if ctx.Err() != nil {
		c.t.Fatalf("boxsup %v did not finish within %s", args, commandTimeout)
	}
	return r
}

func (c *cluster) mustCLI(args ...string) result {
	c.t.Helper()
	r := c.cli(nil, args...)
	if r.code != 0 {
		c.t.Fatalf("boxsup %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// client runs a boxsup command on the whole cluster.
func (c *cluster) client(args ...string) result {
	c.t.Helper()
	return c.cli(nil, append([]string{"--cluster-config", c.clientConfig}, args...)...)
}

func (c *cluster) mustClient(args ...string) result {
	c.t.Helper()
	r := c.client(args...)
	if r.code != 0 {
		c.t.Fatalf("boxsup --cluster-config %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// runBox starts a detached box running sleep (marked) with the flags.
func (c *cluster) runBox(name string, flags ...string) {
	c.t.Helper()
	args := append([]string{"run", "-d", "--name", name, "-e", markEnv}, flags...)
	c.mustClient(append(args, "--", "sleep", "3600")...)
}

// psRow mirrors the documented JSON of boxsup ps.
type psRow struct {
	ID            string  `json:"id"`
	Node          string  `json:"node"`
	State         string  `json:"state"`
	PID           int     `json:"pid"`
	Reason        string  `json:"reason"`
	UnseenSeconds float64 `json:"unseen_seconds"`
}

// ps returns the cluster's `ps -a --format json`, by box ID. A box listed
// twice fails the test.
func (c *cluster) ps() map[string]psRow {
	c.t.Helper()
	r := c.mustClient("ps", "-a", "--format", "json")
	var rows []psRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		c.t.Fatalf("ps --format json: %v\n%s", err, r.stdout)
	}
	out := map[string]psRow{}
	for _, row := range rows {
		if _, dup := out[row.ID]; dup {
			c.t.Fatalf("box %s listed twice:\n%s", row.ID, r.stdout)
		}
		out[row.ID] = row
	}
	return out
}

// eventually polls cond until it holds, failing the test after
// waitDeadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, waitDeadline, pollInterval, what, cond)
}

// markedProcesses lists the live processes carrying mark in their
// environment.
func markedProcesses(mark string) []int {
	entries, _ := os.ReadDir("/proc")
	needle := []byte(markEnv + "=" + mark + "\x00")
	self := os.Getpid()
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(environ, needle) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
				continue
			}
		}
		found = append(found, pid)
	}
	return found
}

// assertNoLeftovers fails the test if a process it started is alive once
// its cleanups ran, and kills what it finds.
func assertNoLeftovers(t *testing.T, mark string) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		left := markedProcesses(mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range left {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				desc = append(desc, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
			}
			t.Errorf("processes left behind:\n%s", strings.Join(desc, "\n"))
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(pollInterval)
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z")
}
