package ownership

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/boxsup/boxsup/cluster/placement"
	"github.com/boxsup/boxsup/internal/etcdtest"
	"github.com/boxsup/boxsup/messages"
)

// ttl is the lease TTL of the tests: short, so expiry tests stay quick, and
// above etcd's minimum for its default election timeout.
const ttl = 2 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t *testing.T, cli *clientv3.Client) *Store {
	t.Helper()
	s, err := NewStore(cli, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func join(t *testing.T, s *Store, node string, on func(LeaseEvent)) *Session {
	t.Helper()
	sess, err := s.Join(testCtx(t), JoinOptions{Node: node, Address: "127.0.0.1:1", TTL: ttl, OnLease: on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSession(sess) })
	return sess
}

// closeSession closes s, giving an unreachable etcd one second.
func closeSession(s *Session) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.Close(ctx)
}

// expire ends a session as a crash would, without its help: renewals stop
// and the lease is revoked behind its back (as its expiry would, sooner).
func expire(t *testing.T, cli *clientv3.Client, s *Session) {
	t.Helper()
	s.cancel()
	<-s.done
	if _, err := cli.Revoke(testCtx(t), clientv3.LeaseID(s.lease)); err != nil {
		t.Fatal(err)
	}
}

func TestClaimIsUniqueClusterWide(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	store := newStore(t, srv.Client(t))
	a, b := join(t, store, "a", nil), join(t, store, "b", nil)
	ctx := testCtx(t)

	rec, err := a.Claim(ctx, "web", false, placement.Spread)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Node != "a" || rec.Lease != a.Lease() || rec.Epoch != 1 {
		t.Fatalf("record = %+v", rec)
	}
	for _, s := range []*Session{b, a} {
		if _, err := s.Claim(ctx, "web", false, placement.Spread); !errors.Is(err, messages.ErrAlreadyExists) {
			t.Fatalf("second claim from %s: %v", s.Node(), err)
		}
	}
	o, err := store.Owner(ctx, "web")
	if err != nil || o.Record.Node != "a" || !o.OwnerAlive {
		t.Fatalf("owner = %+v, %v", o, err)
	}
	if _, err := store.Owner(ctx, "nope"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("missing owner: %v", err)
	}
	if _, err := a.Claim(ctx, "../etc", false, placement.Hash); !errors.Is(err, messages.ErrInvalidID) {
		t.Fatalf("bad id: %v", err)
	}
	if err := b.Release(ctx, "web"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release by another node: %v", err)
	}
	if err := a.Release(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "web", false, placement.Hash); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

// TestClaimRaceHasOneWinner: many sessions claim one ID at once.
func TestClaimRaceHasOneWinner(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	store := newStore(t, srv.Client(t))
	var sessions []*Session
	for _, n := range []string{"a", "b", "c", "d"} {
		sessions = append(sessions, join(t, store, n, nil))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(sessions))
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Claim(testCtx(t), "db", true, placement.Hash)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, messages.ErrAlreadyExists):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d winners", won)
	}
}

func TestJoinRefusesANodeNameHeldByALiveSession(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	store := newStore(t, cli)
	a := join(t, store, "a", nil)
	if _, err := store.Join(testCtx(t), JoinOptions{Node: "a", TTL: ttl}); !errors.Is(err, messages.ErrAlreadyExists) {
		t.Fatalf("second join: %v", err)
	}
	closeSession(a)
	join(t, store, "a", nil) // the name is free once the session is over
	if _, err := store.Join(testCtx(t), JoinOptions{Node: "a/b", TTL: ttl}); err == nil {
		t.Fatal("accepted a node name with a slash")
	}
	if _, err := NewStore(cli, "x/y"); err == nil {
		t.Fatal("accepted a cluster name with a slash")
	}
}

func TestTakeOverNeedsTheOldLeaseGoneAndAnUnchangedRecord(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	store := newStore(t, cli)
	a, b, c := join(t, store, "a", nil), join(t, store, "b", nil), join(t, store, "c", nil)
	ctx := testCtx(t)
	for id, placement := range map[string]placement.Kind{"db": placement.Spread, "pinned": placement.Node} {
		if _, err := a.Claim(ctx, id, true, placement); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Claim(ctx, "plain", false, placement.Spread); err != nil {
		t.Fatal(err)
	}
	seen, err := store.Owner(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeOver(ctx, seen); !errors.Is(err, ErrOwnerAlive) {
		t.Fatalf("take-over from a live owner: %v", err)
	}
	expire(t, cli, a)

	all, err := store.List(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("list = %+v, %v", all, err)
	}
	for _, o := range all {
		if o.OwnerAlive {
			t.Fatalf("%s still looks owned by a live session", o.ID)
		}
		if o.ID != "db" {
			if _, err := b.TakeOver(ctx, o); !errors.Is(err, ErrNotEligible) {
				t.Fatalf("take-over of %s: %v", o.ID, err)
			}
		}
	}
	rec, err := b.TakeOver(ctx, seen)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Node != "b" || rec.Lease != b.Lease() || rec.Epoch != 2 || !rec.Failover {
		t.Fatalf("record = %+v", rec)
	}
	// c read the record before b won: its transaction must lose.
	if _, err := c.TakeOver(ctx, seen); !errors.Is(err, ErrChanged) {
		t.Fatalf("stale take-over: %v", err)
	}
	// The ID stays taken throughout: a fresh claim is refused.
	if _, err := c.Claim(ctx, "db", true, placement.Spread); !errors.Is(err, messages.ErrAlreadyExists) {
		t.Fatalf("claim of a taken-over box: %v", err)
	}
	// A session that is over can claim nothing.
	if _, err := a.Claim(ctx, "new", false, placement.Hash); !errors.Is(err, ErrSessionOver) {
		t.Fatalf("claim by an expired session: %v", err)
	}
}

func TestReclaimAfterARestartKeepsWhatWasNotTakenOver(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	store := newStore(t, cli)
	a, b := join(t, store, "a", nil), join(t, store, "b", nil)
	ctx := testCtx(t)
	for id, failover := range map[string]bool{"x": false, "y": true} {
		if _, err := a.Claim(ctx, id, failover, placement.Hash); err != nil {
			t.Fatal(err)
		}
	}
	expire(t, cli, a) // the supervisor crashed
	y, err := store.Owner(ctx, "y")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeOver(ctx, y); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, "z", true, placement.Spread); !errors.Is(err, ErrSessionOver) {
		t.Fatalf("claim by the crashed session: %v", err)
	}
	a2 := join(t, store, "a", nil) // the supervisor restarted
	if _, err := a2.Claim(ctx, "fenced", true, placement.Spread); err != nil {
		t.Fatal(err)
	}
	expire(t, cli, a2) // lost its lease again, and fenced "fenced"
	a3 := join(t, store, "a", nil)
	got, err := a3.Reclaim(ctx, func(o Owned) bool { return o.ID != "fenced" })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "x" || got[0].Record.Lease != a3.Lease() || got[0].Record.Epoch != 1 {
		t.Fatalf("reclaimed %+v", got)
	}
	if f, _ := store.Owner(ctx, "fenced"); f.OwnerAlive || f.Record.Lease != a2.Lease() {
		t.Fatalf("a fenced box was reclaimed: %+v", f)
	}
	if y, _ := store.Owner(ctx, "y"); y.Record.Node != "b" {
		t.Fatalf("y moved back: %+v", y)
	}
}

// TestLeaseEvents: renewals report a ValidUntil ahead of the send time, a
// lease revoked behind the session's back is reported Gone, and a lease
// left alone expires by itself and takes the member with it.
func TestLeaseEvents(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	store := newStore(t, cli)
	events := make(chan LeaseEvent, 100)
	before := time.Now()
	a := join(t, store, "a", func(e LeaseEvent) { events <- e })
	if a.TTL() < ttl {
		t.Fatalf("granted TTL %v < asked %v", a.TTL(), ttl)
	}
	first := <-events
	if first.Gone || first.ValidUntil.Before(before.Add(a.TTL())) {
		t.Fatalf("first event %+v", first)
	}
	if _, err := cli.Revoke(testCtx(t), clientv3.LeaseID(a.Lease())); err != nil {
		t.Fatal(err)
	}
	for e := range events {
		if e.Gone {
			break
		}
	}

	// Natural expiry: stop renewing and wait for etcd to drop the member.
	b := join(t, store, "b", nil)
	b.cancel()
	<-b.done
	eventually(t, 3*b.TTL()+10*time.Second, func() bool {
		ms, err := store.Members(testCtx(t))
		return err == nil && len(ms) == 0
	})
}

func TestEtcdDownIsUnavailableNotAVerdict(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	store := newStore(t, srv.Client(t))
	a := join(t, store, "a", nil)
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := a.Claim(ctx, "web", false, placement.Hash); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim with etcd down: %v", err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(pollInterval)
	}
}

// pollInterval is how often eventually looks at its condition.
const pollInterval = 50 * time.Millisecond

// TestSpecLivesAndDiesWithTheRecord: a claim writes the spec in its
// transaction, a take-over keeps it for the new owner, only the owner
// replaces it, and a release deletes it with the record.
func TestSpecLivesAndDiesWithTheRecord(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	store := newStore(t, cli)
	a, b := join(t, store, "a", nil), join(t, store, "b", nil)
	ctx := testCtx(t)
	rec, err := a.ClaimBox(ctx, "db", ClaimOptions{Failover: true, Placement: placement.Hash, Spec: []byte(`{"v":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Address != "127.0.0.1:1" {
		t.Fatalf("record address %q", rec.Address)
	}
	if got, err := store.Spec(ctx, "db"); err != nil || string(got) != `{"v":1}` {
		t.Fatalf("spec = %q, %v", got, err)
	}
	if err := b.PutSpec(ctx, "db", []byte(`{"v":"b"}`)); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("spec write by another node: %v", err)
	}
	if err := a.PutSpec(ctx, "db", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	expire(t, cli, a)
	seen, err := store.Owner(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeOver(ctx, seen); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Spec(ctx, "db"); err != nil || string(got) != `{"v":2}` {
		t.Fatalf("spec after take-over = %q, %v", got, err)
	}
	if err := b.Release(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Spec(ctx, "db"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("spec after release: %v", err)
	}
	// A new box of the same ID without a spec does not inherit one.
	if _, err := b.ClaimBox(ctx, "db", ClaimOptions{Placement: placement.Node}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Spec(ctx, "db"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("spec of a box claimed without one: %v", err)
	}
}

// TestMarkFenced: a node marks its own records (of any session) fenced, not
// another node's; a take-over clears the mark.
func TestMarkFenced(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	store := newStore(t, cli)
	a, b := join(t, store, "a", nil), join(t, store, "b", nil)
	ctx := testCtx(t)
	if _, err := a.Claim(ctx, "db", true, placement.Spread); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "web", true, placement.Spread); err != nil {
		t.Fatal(err)
	}
	expire(t, cli, a)
	a2 := join(t, store, "a", nil)
	if err := a2.MarkFenced(ctx, []string{"db", "web", "missing"}); err != nil {
		t.Fatal(err)
	}
	db, _ := store.Owner(ctx, "db")
	web, _ := store.Owner(ctx, "web")
	if !db.Record.Fenced || web.Record.Fenced {
		t.Fatalf("db %+v, web %+v", db.Record, web.Record)
	}
	rec, err := b.TakeOver(ctx, db)
	if err != nil || rec.Fenced || rec.Node != "b" {
		t.Fatalf("take-over of a fenced box: %+v, %v", rec, err)
	}
}
