package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netLab is a set of network namespaces, one per member, each joined to a
// bridge in the test's namespace by a veth pair: the members reach etcd,
// each other and the client only through their veth, which the test can
// cut.
type netLab struct {
	t      *testing.T
	bridge string
	subnet string            // "10.213.N"
	ns     map[string]string // node -> namespace
	veth   map[string]string // node -> the host side of its veth
	ips    map[string]string // node -> address
}

// hostIP is the bridge's address: where etcd and the client listen.
func (l *netLab) hostIP() string { return l.subnet + ".1" }

// newNetLab makes the namespaces, or skips the test with the reason.
func newNetLab(t *testing.T, nodes ...string) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the ip command (iproute2) is not installed")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b[:2])
	l := &netLab{t: t, bridge: "bxb" + tag, subnet: fmt.Sprintf("10.213.%d", b[2]),
		ns: map[string]string{}, veth: map[string]string{}, ips: map[string]string{}}
	t.Cleanup(l.tearDown)
	l.must("link", "add", l.bridge, "type", "bridge")
	l.must("addr", "add", l.hostIP()+"/24", "dev", l.bridge)
	l.must("link", "set", l.bridge, "up")
	for i, n := range nodes {
		ns, host, peer := "bxs-"+tag+"-"+n, "bxv"+tag+n, "bxp"+tag+n
		l.ns[n], l.veth[n], l.ips[n] = ns, host, fmt.Sprintf("%s.%d", l.subnet, 11+i)
		l.must("netns", "add", ns)
		l.must("link", "add", host, "type", "veth", "peer", "name", peer)
		l.must("link", "set", peer, "netns", ns)
		l.must("link", "set", host, "master", l.bridge)
		l.must("link", "set", host, "up")
		l.must("-n", ns, "addr", "add", l.ips[n]+"/24", "dev", peer)
		l.must("-n", ns, "link", "set", peer, "up")
		l.must("-n", ns, "link", "set", "lo", "up")
	}
	return l
}

// must runs ip with args; a failure during setup skips the test (the
// kernel or the container does not allow it), later it fails the test.
func (l *netLab) must(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Skipf("cannot build the network namespaces here: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// cut takes node's link down (from the bridge's side): the member is cut
// off from etcd, the other members and the clients.
func (l *netLab) cut(node string) { l.set(node, "down") }

// heal brings node's link back.
func (l *netLab) heal(node string) { l.set(node, "up") }

func (l *netLab) set(node, state string) {
	l.t.Helper()
	if out, err := exec.Command("ip", "link", "set", l.veth[node], state).CombinedOutput(); err != nil {
		l.t.Fatalf("ip link set %s %s: %v: %s", l.veth[node], state, err, out)
	}
}

// tearDown deletes what newNetLab made (deleting a namespace deletes its
// side of the veth, and the pair with it; the host side is deleted too in
// case a process kept the namespace alive).
func (l *netLab) tearDown() {
	for n, ns := range l.ns {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = exec.Command("ip", "link", "del", l.veth[n]).Run()
	}
	_ = exec.Command("ip", "link", "del", l.bridge).Run()
}
