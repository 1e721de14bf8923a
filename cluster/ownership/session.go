package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/boxsup/boxsup/messages"
)

// Store reads and writes one cluster's ownership records.
type Store struct {
	cli  *clientv3.Client
	keys keys
}

// NewStore returns the store of cluster on an etcd client the caller owns
// (and closes after every Session is closed).
func NewStore(cli *clientv3.Client, cluster string) (*Store, error) {
	k, err := newKeys(cluster)
	if err != nil {
		return nil, err
	}
	return &Store{cli: cli, keys: k}, nil
}

// LeaseEvent reports a renewal of the session's lease, or its loss.
type LeaseEvent struct {
	// ValidUntil is the earliest time etcd may expire the lease: the send
	// time of the last answered renewal plus the TTL etcd granted. etcd
	// received that renewal after it was sent, so its own expiry is later.
	ValidUntil time.Time
	// Gone is true when etcd answered that the lease does not exist: it
	// expired, or was revoked. The session is over.
	Gone bool
}

// JoinOptions configure a session.
type JoinOptions struct {
	// Node is this member's name, unique in the cluster.
	Node string
	// Address is the member's protoactor remote address (host:port).
	Address string
	// TTL is the lease's time to live; etcd may grant more (never less).
	TTL time.Duration
	// OnLease, when set, receives every renewal and the loss, from one
	// goroutine, in order. It must not block.
	OnLease func(LeaseEvent)
}

// Session is a member's presence in the cluster: a lease, renewed every
// TTL/3 until Close, under which the member's keys live.
type Session struct {
	store   *Store
	node    string
	address string
	lease   LeaseID
	ttl     time.Duration

	cancel context.CancelFunc
	done   chan struct{}
	close  sync.Once
}

// Join grants a lease and registers node under it. A node name held by a
// live session is messages.ErrAlreadyExists: a supervisor restarted within
// one TTL waits for its previous session to expire (or the operator picked
// the same name twice, which must never silently succeed).
func (s *Store) Join(ctx context.Context, o JoinOptions) (*Session, error) {
	if !namePattern.MatchString(o.Node) {
		return nil, fmt.Errorf("ownership: node name %q: use letters, digits, '.', '_' and '-'", o.Node)
	}
	secs := int64((o.TTL + time.Second - 1) / time.Second)
	if secs < 1 {
		return nil, fmt.Errorf("ownership: lease TTL %v: must be at least 1 s", o.TTL)
	}
	grant, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return nil, unavailable("grant lease", err)
	}
	lease := LeaseID(grant.ID)
	val, err := json.Marshal(Member{Node: o.Node, Lease: lease, Address: o.Address, JoinedAt: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	mkey := s.keys.member(o.Node)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(mkey), "=", 0)).
		Then(
			clientv3.OpPut(mkey, string(val), clientv3.WithLease(grant.ID)),
			clientv3.OpPut(s.keys.lease(lease), o.Node, clientv3.WithLease(grant.ID)),
		).
		Else(clientv3.OpGet(mkey)).
		Commit()
	if err != nil {
		s.revoke(lease)
		return nil, unavailable("register member", err)
	}
	if !resp.Succeeded {
		s.revoke(lease)
		holder := "another session"
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
			var m Member
			if json.Unmarshal(kvs[0].Value, &m) == nil {
				holder = fmt.Sprintf("lease %s (joined %s)", m.Lease, m.JoinedAt.Format(time.RFC3339))
			}
		}
		return nil, messages.Errorf(messages.ErrAlreadyExists,
			"node name %q is held by a live session, %s; if that was this node before a restart, it expires within one lease TTL", o.Node, holder)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	sess := &Session{store: s, node: o.Node, address: o.Address, lease: lease, ttl: time.Duration(grant.TTL) * time.Second, cancel: cancel, done: make(chan struct{})}
	go sess.keepAlive(runCtx, o.OnLease)
	return sess, nil
}

// Node returns the session's node name.
func (s *Session) Node() string { return s.node }

// Lease returns the session's lease.
func (s *Session) Lease() LeaseID { return s.lease }

// TTL returns the TTL etcd granted, which may exceed the one asked for. The
// fencing and fail-over timing must be checked against this value.
func (s *Session) TTL() time.Duration { return s.ttl }

// keepAlive renews the lease every TTL/3 with single requests rather than
// clientv3's stream, because the send time of each answered renewal is what
// bounds etcd's expiry from below (LeaseEvent.ValidUntil).
func (s *Session) keepAlive(ctx context.Context, on func(LeaseEvent)) {
	defer close(s.done)
	interval := s.ttl / 3
	for {
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, interval)
		resp, err := s.store.cli.KeepAliveOnce(rctx, clientv3.LeaseID(s.lease))
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && resp.TTL > 0:
			if on != nil {
				on(LeaseEvent{ValidUntil: sent.Add(time.Duration(resp.TTL) * time.Second)})
			}
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			if on != nil {
				on(LeaseEvent{Gone: true})
			}
			return
		}
		// Any other error is transient: etcd unreachable. Nothing is
		// reported; the last ValidUntil ages, which is the signal.
		wait := time.Until(sent.Add(interval))
		if err != nil {
			wait = 100 * time.Millisecond // retry soon, the deadline is near
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Close ends the session: it stops renewing and revokes the lease within
// ctx, so the member's keys vanish at once. A revoke that fails (etcd
// unreachable) leaves a lease that expires by itself within its TTL. Box
// records stay: a member that leaves with boxes running looks to the others
// exactly like a lost member.
func (s *Session) Close(ctx context.Context) {
	s.close.Do(func() {
		s.cancel()
		<-s.done
		s.store.revokeWithin(ctx, s.lease)
	})
}

// revoke gives up a lease that never served a session.
func (s *Store) revoke(lease LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.revokeWithin(ctx, lease)
}

func (s *Store) revokeWithin(ctx context.Context, lease LeaseID) {
	_, _ = s.cli.Revoke(ctx, clientv3.LeaseID(lease))
}
