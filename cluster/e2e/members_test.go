package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/cluster/placement"
)

// TestThreeMembers: three members (processes with homes of their own) and
// a client, over mutual TLS on loopback. Spread places 30 boxes evenly; ps
// lists them with their nodes; stop, kill, metrics and logs work across
// hosts; an ID taken on one member is refused on another, from a cluster
// client and from a member's own local CLI. Then a member's supervisor is
// killed: its boxes show unknown elsewhere and keep running; restarted, it
// re-adopts them and nothing is duplicated. Last, with etcd gone, starts are
// refused and running boxes keep running.
func TestThreeMembers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.useTLS("127.0.0.1", "a", "b", "c")
	for _, n := range []string{"a", "b", "c"} {
		c.startMember(n)
	}

	const boxes = 30
	for i := range boxes {
		c.runBox(fmt.Sprintf("s%02d", i), "--placement", "spread")
	}
	rows := c.ps()
	perNode := map[string]int{}
	pids := map[string]int{}
	for i := range boxes {
		id := fmt.Sprintf("s%02d", i)
		r, ok := rows[id]
		if !ok || r.State != "running" {
			t.Fatalf("box %s: %+v", id, r)
		}
		perNode[r.Node]++
		pids[id] = r.PID
	}
	if perNode["a"] != 10 || perNode["b"] != 10 || perNode["c"] != 10 {
		t.Fatalf("spread placed %v, want 10 on each member", perNode)
	}
	table := c.mustClient("ps").stdout
	if !strings.HasPrefix(table, "ID") || !strings.Contains(strings.SplitN(table, "\n", 2)[0], "NODE") {
		t.Fatalf("ps has no NODE column:\n%s", table)
	}

	// One box per member, to act on across hosts.
	onNode := map[string]string{}
	for id, r := range rows {
		if onNode[r.Node] == "" || id < onNode[r.Node] {
			onNode[r.Node] = id
		}
	}
	c.mustClient("stop", onNode["a"])
	c.mustClient("kill", onNode["b"])
	if out := c.mustClient("metrics", onNode["c"]).stdout; !strings.Contains(out, onNode["c"]) {
		t.Fatalf("metrics of %s:\n%s", onNode["c"], out)
	}
	after := c.ps()
	if after[onNode["a"]].State != "exited" || after[onNode["b"]].State != "exited" || after[onNode["c"]].State != "running" {
		t.Fatalf("after stop, kill and metrics: %+v %+v %+v", after[onNode["a"]], after[onNode["b"]], after[onNode["c"]])
	}
	c.mustClient("run", "-d", "--name", "hello", "--node", "b", "-e", markEnv, "--", "sh", "-c", "echo hello from b; sleep 3600")
	eventually(t, "the logs of a box on b", func() bool {
		return strings.Contains(c.client("logs", "hello").stdout, "hello from b")
	})

	// The same ID on another member is refused, from the cluster and from
	// that member's own home.
	taken := onNode["c"]
	r := c.client("run", "-d", "--name", taken, "--node", "a", "--", "sleep", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second run of %s on another member: %s", taken, r)
	}
	r = c.cli(nil, "--home", c.members["b"].home, "run", "-d", "--name", taken, "--", "sleep", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second run of %s through member b's own socket: %s", taken, r)
	}

	// Supervisor loss: c's boxes stay up, and are unknown to the others;
	// even a fail-over box is not moved while c's host answers (its
	// detached shim may run: nobody fenced it).
	mover := ""
	for i := 0; mover == ""; i++ {
		id := fmt.Sprintf("m%d", i)
		if n, _ := placement.Choose(placement.Placement{Kind: placement.Hash}, id, []placement.Member{{Node: "a"}, {Node: "b"}, {Node: "c"}}); n == "c" {
			mover = id
		}
	}
	c.runBox(mover, "--placement", "hash", "--failover")
	rows = c.ps()
	pids[mover] = rows[mover].PID
	lost := c.members["c"]
	lost.signal(syscall.SIGKILL)
	var onC []string
	for id, row := range rows {
		if row.Node == "c" && id != taken {
			onC = append(onC, id)
		}
	}
	eventually(t, "c's boxes to show unknown, with how long c was unseen", func() bool {
		now := c.ps()
		for _, id := range onC {
			if now[id].State != "unknown" || now[id].Node != "c" {
				return false
			}
		}
		return now[onC[0]].UnseenSeconds > 0
	})
	for _, id := range onC {
		if !alive(pids[id]) {
			t.Fatalf("box %s (pid %d) died with its supervisor", id, pids[id])
		}
	}
	const refusal = "not failing over: the old owner's lease is gone but its host still answers, so the box may still run there"
	eventually(t, "a member to decide, after failover-after, not to fail the box over", func() bool {
		return c.members["a"].hasLog(refusal) || c.members["b"].hasLog(refusal)
	})
	if r := c.ps()[mover]; r.State != "unknown" || r.Node != "c" || !alive(pids[mover]) {
		t.Fatalf("the fail-over box of the crashed supervisor: %+v (pid %d alive %v)", r, pids[mover], alive(pids[mover]))
	}
	c.startMember("c")
	eventually(t, "c's boxes to be running again", func() bool {
		now := c.ps()
		for _, id := range onC {
			if now[id].State != "running" || now[id].Node != "c" || now[id].PID != pids[id] {
				return false
			}
		}
		return len(now) == boxes+2
	})
	if n := len(markedGuests(c.mark, "sleep")); n != boxes-2+2 {
		t.Fatalf("%d sleeping guests, want %d (nothing duplicated)", n, boxes-2+2)
	}

	// etcd gone: starts that need ownership are refused; boxes run on,
	// except the fail-over box, which its member fences once its lease may
	// be lost (it cannot tell etcd down from a partition: docs/CLUSTER.md).
	c.etcd.Stop()
	r = c.cli(nil, "--home", c.members["a"].home, "run", "-d", "--name", "late", "--", "sleep", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "unavailable") {
		t.Fatalf("a start with etcd down: %s", r)
	}
	for id, pid := range pids {
		if id != onNode["a"] && id != onNode["b"] && id != mover && !alive(pid) {
			t.Fatalf("box %s (pid %d) died with etcd", id, pid)
		}
	}
}

// markedGuests lists the test's guest processes whose command is name.
func markedGuests(mark, name string) []int {
	var out []int
	for _, pid := range markedProcesses(mark) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(b)) == name {
			out = append(out, pid)
		}
	}
	return out
}

// TestMutualTLSRefusesAnotherCA: a client whose certificate comes from
// another CA is refused by the members (at the handshake, before any
// message), and a client configured with that CA gets a clear error.
func TestMutualTLSRefusesAnotherCA(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.useTLS("127.0.0.1", "a")
	m := c.startMember("a")
	c.runBox("mine", "--node", "a")

	other := filepath.Join(c.dir, "other-pki")
	c.mustCLI("cluster", "certs", "--dir", other, "--node", "ops=127.0.0.1")

	// At the handshake: the member's server requires a client certificate
	// of its CA.
	addr := memberAddress(t, m)
	pki := filepath.Join(c.dir, "pki")
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	foreign, err := tls.LoadX509KeyPair(filepath.Join(other, "ops.pem"), filepath.Join(other, "ops.key"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, Certificates: []tls.Certificate{foreign}, ServerName: "127.0.0.1"})
	if err == nil {
		// TLS 1.3: the server's verdict on the client certificate arrives
		// with the first read.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		_ = conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client certificate of another CA: %v", err)
	}

	// Through the CLI: refused, and the box is untouched.
	foreignCfg := c.writeClientConfig("foreign.yaml", map[string]any{
		"tls_ca": filepath.Join(other, "ca.pem"), "tls_cert": filepath.Join(other, "ops.pem"), "tls_key": filepath.Join(other, "ops.key"),
	})
	r := c.cli(nil, "--cluster-config", foreignCfg, "stop", "mine")
	if r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("stop from a client of another CA: %s", r)
	}
	if got := c.ps()["mine"]; got.State != "running" {
		t.Fatalf("the box after a refused stop: %+v", got)
	}
}

// TestInsecureClusterWorksAndWarns: --insecure-cluster works, and warns at
// every start, on the member and on the client.
func TestInsecureClusterWorksAndWarns(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.useInsecure()
	m := c.startMember("a")
	if !m.hasLog(mtls.InsecureWarning) {
		t.Fatalf("the member did not warn:\n%s", m.log.String())
	}
	r := c.mustClient("run", "-d", "--name", "plain", "-e", markEnv, "--", "sleep", "3600")
	if !strings.Contains(r.stderr, "insecure cluster transport") {
		t.Fatalf("the client did not warn: %s", r)
	}
	if got := c.ps()["plain"]; got.State != "running" || got.Node != "a" {
		t.Fatalf("box plain: %+v", got)
	}
	// The commands added on the other side of the control API reach the
	// cluster too: inspect on the box's member, events from every member.
	if out := c.mustClient("inspect", "plain").stdout; !strings.Contains(out, `"node": "a"`) {
		t.Fatalf("inspect of a box on a member:\n%s", out)
	}
	if out := c.mustClient("events", "--since", "1h", "--until", "0s").stdout; !strings.Contains(out, `"kind":"BoxReady"`) || !strings.Contains(out, `"box_id":"plain"`) {
		t.Fatalf("the cluster's event history:\n%s", out)
	}
}

// memberAddress is the address the member advertises, from its log.
func memberAddress(t *testing.T, m *member) string {
	t.Helper()
	for _, line := range strings.Split(m.log.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "cluster member listening; joining" {
			if a, ok := l["advertise"].(string); ok {
				return a
			}
		}
	}
	t.Fatalf("member %s logged no address", m.node)
	return ""
}
