package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/cluster/placement"
)

// TestLeavingMemberHandsOverItsFailoverBoxes: a member that shuts down
// (SIGTERM, leaving boxes running) first fences its fail-over boxes, since
// once its lease is gone another member may start them; that member does,
// after failover-after. The box without fail-over keeps running and is
// shown unknown. Restarted, the member reclaims the box that stayed, leaves
// the one that moved, and does not start it again. A box with secrets
// cannot fail over: its spec would have to be kept in etcd.
func TestLeavingMemberHandsOverItsFailoverBoxes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "")
	c.useInsecure()
	a := c.startMember("a")
	c.startMember("b")

	r := c.client("run", "-d", "--name", "vault", "--placement", "spread", "--failover", "--secret-env", "TOKEN=s3cr3t", "--", "sleep", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot fail over") || strings.Contains(r.stdout+r.stderr, "s3cr3t") {
		t.Fatalf("fail-over of a box with secrets: %s", r)
	}

	mover := ""
	for i := 0; mover == ""; i++ {
		id := fmt.Sprintf("svc%d", i)
		if n, _ := placement.Choose(placement.Placement{Kind: placement.Hash}, id, []placement.Member{{Node: "a"}, {Node: "b"}}); n == "a" {
			mover = id
		}
	}
	c.runBox(mover, "--placement", "hash", "--failover")
	c.runBox("stay", "--node", "a")
	stay := c.ps()["stay"]

	a.signal(syscall.SIGTERM)
	if !alive(stay.PID) {
		t.Fatal("the box without fail-over did not outlive its member")
	}
	eventually(t, "the fail-over box to run on b", func() bool {
		rows := c.ps()
		return rows[mover].State == "running" && rows[mover].Node == "b" && rows["stay"].State == "unknown"
	})
	if b, err := os.ReadFile(filepath.Join(a.home, "cluster-fenced.json")); err != nil || !strings.Contains(string(b), mover) {
		t.Fatalf("a's record of fenced boxes: %q, %v", b, err)
	}

	c.startMember("a")
	eventually(t, "a to reclaim the box that stayed", func() bool {
		rows := c.ps()
		return rows["stay"].State == "running" && rows["stay"].PID == stay.PID && rows[mover].Node == "b"
	})
	r = c.cli(nil, "--home", a.home, "start", mover)
	if r.code == 0 {
		t.Fatalf("a started its fenced copy again: %s", r)
	}
	if n := len(markedGuests(c.mark, "sleep")); n != 2 {
		t.Fatalf("%d guests, want 2 (nothing duplicated)", n)
	}
}
