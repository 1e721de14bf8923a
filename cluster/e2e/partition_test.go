package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxsup/boxsup/cluster/placement"
)

// TestPartitionFencesThenFailsOverNeverTwice runs each member in its own
// network namespace and cuts member a off (etcd, peers and clients are
// reachable only through its veth). Its fail-over boxes are stopped there
// (fenced), then run on another member, never before failover-after, and
// at no sample (every 100 ms, across the whole window) do two copies of one
// box run. Its pinned box is shown unknown meanwhile. When the link comes
// back, a rejoins and does not start the fenced boxes again; the pinned box
// runs on, on a.
func TestPartitionFencesThenFailsOverNeverTwice(t *testing.T) {
	t.Parallel()
	nodes := []string{"a", "b", "c"}
	lab := newNetLab(t, nodes...)
	c := newCluster(t, lab.hostIP())
	c.netns = lab.ns
	c.host = func(node string) string { return lab.ips[node] }
	c.useInsecure()
	c.clientConfig = c.writeClientConfig("client.yaml", map[string]any{"insecure": true, "listen": lab.hostIP() + ":0"})
	for _, n := range nodes {
		c.startMember(n)
	}

	// Fail-over boxes that the hash places on a, each a sleep with an
	// argument of its own, so that a sample tells the copies apart.
	var members []placement.Member
	for _, n := range nodes {
		members = append(members, placement.Member{Node: n})
	}
	movers := map[string]string{} // box ID -> its guest's sleep argument
	for i := 0; len(movers) < 3; i++ {
		id := fmt.Sprintf("mover%d", i)
		if n, _ := placement.Choose(placement.Placement{Kind: placement.Hash}, id, members); n == "a" {
			movers[id] = strconv.Itoa(7000 + i)
		}
	}
	for id, arg := range movers {
		c.mustClient("run", "-d", "--name", id, "--placement", "hash", "--failover", "-e", markEnv, "--", "sleep", arg)
	}
	c.mustClient("run", "-d", "--name", "pinned", "--node", "a", "-e", markEnv, "--", "sleep", "6999")
	for id := range movers {
		if r := c.ps()[id]; r.Node != "a" || r.State != "running" {
			t.Fatalf("box %s before the cut: %+v", id, r)
		}
	}

	// Sample every 100 ms which member runs a copy of each box: by the
	// network namespace of the guest process itself.
	nsOf := map[string]string{}
	for _, n := range nodes {
		nsOf[netnsOf(c.members[n].cmd.Process.Pid)] = n
	}
	s := newSampler(c.mark, movers, nsOf)
	s.start()
	defer s.stop()
	if n := s.copiesOn("a"); n != len(movers) {
		t.Fatalf("the sampler sees %d copies on a, want %d", n, len(movers))
	}

	lab.cut("a")
	cutAt := time.Now()
	eventually(t, "a to fence its fail-over boxes", func() bool { return s.copiesOn("a") == 0 })
	if !s.sawOnlyOn("a") {
		t.Fatal("a copy ran elsewhere before a's fence")
	}
	eventually(t, "the fail-over boxes to run on another member", func() bool {
		rows := c.ps()
		for id := range movers {
			if r := rows[id]; r.State != "running" || r.Node == "a" {
				return false
			}
		}
		return rows["pinned"].State == "unknown" && rows["pinned"].Node == "a"
	})
	eventually(t, "the sampler to see every fail-over box elsewhere", func() bool {
		return s.copiesOn("b")+s.copiesOn("c") == len(movers)
	})
	if first := s.firstElsewhere("a"); first.Sub(cutAt) < failoverAfter {
		t.Fatalf("a box ran elsewhere %v after the cut, before failover-after (%v)", first.Sub(cutAt), failoverAfter)
	}

	lab.heal("a")
	a := c.members["a"]
	eventually(t, "a to rejoin", func() bool { return strings.Count(a.log.String(), `"msg":"member ready: boxes reclaimed"`) >= 2 })
	eventually(t, "the pinned box to show running on a again", func() bool {
		r := c.ps()["pinned"]
		return r.State == "running" && r.Node == "a"
	})
	// A negative check needs a window: a few scans of a (a quarter of the
	// TTL each) after it rejoined, while the sampler watches. It must not
	// have started a fenced box again.
	observe := time.NewTimer(leaseTTL)
	<-observe.C
	s.stop()
	if n := s.copiesOn("a"); n != 0 {
		t.Fatalf("%d fail-over boxes run on a again after the link came back", n)
	}
	if id, at, n := s.worst(); n > 1 {
		t.Fatalf("%d copies of box %s ran at once (sample at %v after the cut)", n, id, at.Sub(cutAt))
	}
	t.Logf("%d samples; fenced and failed over with never more than one copy", s.samples)
}

// sampler counts, every 100 ms, the running copies of each box per member.
type sampler struct {
	mark   string
	args   map[string]string // sleep argument -> box ID
	nodeOf map[string]string // network namespace -> member

	mu        sync.Mutex
	last      map[string]map[string]int // box -> member -> copies, at the latest sample
	samples   int
	worstID   string
	worstN    int
	worstAt   time.Time
	elsewhere map[string]time.Time // member -> first sample with a copy outside it
	onlyOn    bool
	done      chan struct{}
	stopped   chan struct{}
	once      sync.Once
}

func newSampler(mark string, boxes map[string]string, nodeOf map[string]string) *sampler {
	s := &sampler{mark: mark, args: map[string]string{}, nodeOf: nodeOf, elsewhere: map[string]time.Time{},
		done: make(chan struct{}), stopped: make(chan struct{})}
	for id, arg := range boxes {
		s.args[arg] = id
	}
	return s
}

func (s *sampler) start() {
	s.sample()
	go func() {
		defer close(s.stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
}

func (s *sampler) stop() {
	s.once.Do(func() { close(s.done) })
	<-s.stopped
}

// sample reads the guests now.
func (s *sampler) sample() {
	now := time.Now()
	counts := map[string]map[string]int{}
	for _, pid := range markedGuests(s.mark, "sleep") {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		id, ok := s.args[argv[len(argv)-1]]
		if !ok {
			continue
		}
		node := s.nodeOf[netnsOf(pid)]
		if counts[id] == nil {
			counts[id] = map[string]int{}
		}
		counts[id][node]++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	s.last = counts
	for id, per := range counts {
		total := 0
		for node, n := range per {
			total += n
			for _, member := range s.nodeOf {
				if _, seen := s.elsewhere[member]; !seen && node != member && n > 0 {
					s.elsewhere[member] = now
				}
			}
		}
		if total > s.worstN {
			s.worstID, s.worstN, s.worstAt = id, total, now
		}
	}
}

// copiesOn counts the copies running on member at the latest sample.
func (s *sampler) copiesOn(member string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, per := range s.last {
		n += per[member]
	}
	return n
}

// sawOnlyOn reports that no sample so far had a copy outside member.
func (s *sampler) sawOnlyOn(member string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, seen := s.elsewhere[member]
	return !seen
}

// firstElsewhere is the time of the first sample with a copy outside
// member.
func (s *sampler) firstElsewhere(member string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.elsewhere[member]
}

// worst is the most copies of one box seen in one sample.
func (s *sampler) worst() (string, time.Time, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.worstID, s.worstAt, s.worstN
}

// netnsOf names the network namespace of pid ("net:[4026532...]").
func netnsOf(pid int) string {
	l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	return l
}
