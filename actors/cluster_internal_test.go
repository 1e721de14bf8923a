package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/cluster/nodeloss"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// testTiming is short so that fences and expiries happen within seconds;
// etcd grants TTLs of 2 s and more with its default election timeout.
var testTiming = nodeloss.Timing{LeaseTTL: 2 * time.Second, FenceAfter: 2 * time.Second, FailoverAfter: 5 * time.Second}

func clusterConfig(endpoint, node string) *ClusterConfig {
	return &ClusterConfig{
		Name: "test", Node: node, Advertise: "127.0.0.1:0", Etcd: []string{endpoint},
		Transport: mtls.Transport{Insecure: true}, Timing: testTiming,
		hooks: &clusterHooks{scanInterval: 200 * time.Millisecond},
	}
}

func sleeper(id string, p *messages.Placement) messages.StartBox {
	return messages.StartBox{ID: id, Spec: spec("/bin/sleep", "300"), Detach: true, Placement: p, StopTimeout: time.Second}
}

// TestNonMemberRefusesPlacement: placement and fail-over cannot be honoured
// outside a cluster, so they are refused, before anything is written.
func TestNonMemberRefusesPlacement(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	_, err := ts.sup.Start(ts.ctx(), sleeper("p", &messages.Placement{Kind: messages.PlaceSpread, Failover: true}))
	if !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("Start with a placement on a non-member: %v", err)
	}
	if box, _ := layout.Open(ts.sup.Home()); box != nil {
		if ids, _ := box.BoxIDs(); len(ids) != 0 {
			t.Fatalf("boxes left: %v", ids)
		}
	}
	if _, err := NewSupervisor(ts.ctx(), Config{Home: t.TempDir(), Cluster: &ClusterConfig{Name: "x/y"}}); !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("a bad cluster name: %v", err)
	}
	bad := clusterConfig("http://127.0.0.1:1", "a")
	bad.Timing = nodeloss.Timing{LeaseTTL: 10 * time.Second, FenceAfter: 10 * time.Second, FailoverAfter: 15 * time.Second}
	if _, err := NewSupervisor(ts.ctx(), Config{Home: t.TempDir(), Cluster: bad}); !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("failover-after below fence-after plus the TTL: %v", err)
	}
}
