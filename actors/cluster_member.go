package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/boxsup/boxsup/cluster/nodeloss"
	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/cluster/remoting"
	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/messages"
)

// Periods of a member.
const (
	// doorTickInterval paces the fence's clock: a member fences at most
	// this long after its deadline.
	doorTickInterval = 100 * time.Millisecond
	// etcdOpTimeout bounds one etcd operation of a request (a claim): a
	// start is refused with ErrUnavailable after it, never left hanging.
	etcdOpTimeout = 3 * time.Second
	// rejoinInterval paces the attempts to join while the member has no
	// session.
	rejoinInterval = time.Second
	// remoteReplyTTL bounds how long a request from another host waits for
	// its answer here (a start's readiness, a stop's timeout).
	remoteReplyTTL = 15 * time.Minute
)

// member is the cluster side of a Supervisor. Its state lives here, not in
// the door actor, so that it survives the actor's restart after a panic;
// everything below mu-free is touched only by the door actor's goroutine
// (its helpers report back with messages).
type member struct {
	sup    *Supervisor
	core   *core
	cfg    ClusterConfig
	log    logrus.FieldLogger
	root   *actor.PID // the root supervisor: every request not handled here goes there
	cli    *clientv3.Client
	store  *ownership.Store
	fenced *fencedSet
	logs   *logServer

	// endpoint is set once remote is started (before any peer can reach
	// the door) and read by Supervisor.leaveCluster after the door left.
	endpoint *remoting.Endpoint

	self       *actor.PID
	tickCancel scheduler.CancelFunc
	unsubEvent func()

	session   *ownership.Session
	ending    *ownership.Session // a fenced session, revoked before the next join
	joining   bool
	lastJoin  time.Time
	joinedAt  time.Time
	reclaimed bool // the session's Reclaim is done: it may take new boxes
	fence     *nodeloss.Fence
	fencing   bool
	failover  *nodeloss.Failover
	timing    nodeloss.Timing // with the TTL etcd granted

	owned       map[string]ownership.Record // records held by this member's current session
	pending     map[string]*pendingStart    // starts waiting for their claim
	releasing   map[string][]deferredRequest
	busy        map[string]bool   // starts, take-overs and releases in flight
	changed     map[string]uint64 // the change counter at each box's last ownership change
	epoch       uint64
	knownLeases []ownership.LeaseID // leases the failover tracker knows
	scanning    bool
	lastScan    time.Time
	peers       map[string]*peer
	subs        map[string]*remoteSub
	left        bool
	leaveAsker  *actor.PID
	warned      map[string]bool // fail-overs refused because the old host answers, logged once
}

// peer is what this member knows of another one.
type peer struct {
	address  string
	alive    bool
	lastSeen time.Time
}

// newMember prepares the cluster side; the door actor starts it.
func newMember(s *Supervisor, cfg ClusterConfig, cli *clientv3.Client, store *ownership.Store, fenced *fencedSet) *member {
	return &member{
		sup: s, core: s.core, cfg: cfg, log: s.core.log.WithFields(logrus.Fields{"cluster": cfg.Name, "node": cfg.Node}),
		root: s.rootPID, cli: cli, store: store, fenced: fenced, logs: newLogServer(s),
		// Until the first session, the fence counts from now: a member that
		// cannot join within fence-after fences its fail-over boxes, as one
		// that lost its lease would (it may be the one cut off).
		fence:    nodeloss.NewFence(cfg.Timing, time.Now()),
		failover: nodeloss.NewFailover(cfg.Timing),
		timing:   cfg.Timing,
		owned:    map[string]ownership.Record{}, pending: map[string]*pendingStart{},
		releasing: map[string][]deferredRequest{}, busy: map[string]bool{}, changed: map[string]uint64{},
		peers: map[string]*peer{}, subs: map[string]*remoteSub{}, warned: map[string]bool{},
	}
}

// door is the actor spawned under remoting.RootName: the member's front
// door, through which every request reaches the root supervisor, from this
// process (the facade sends to it) or from another host.
type door struct{ m *member }

// Receive implements actor.Actor.
func (d *door) Receive(ctx actor.Context) { d.m.receive(ctx) }

func (m *member) receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		m.onStarted(ctx)
	case *actor.Stopping, *actor.Restarting:
		m.onStopping() // a restart starts its own ticker
	case *actor.Stopped, *actor.ReceiveTimeout:
	case *wire.Envelope:
		m.onEnvelope(ctx, msg)
	case *messages.StartBox:
		m.onStart(ctx, *msg)
	case messages.StartBox:
		m.onStart(ctx, msg)
	case *messages.StartExisting:
		m.onStartExisting(ctx, msg.ID)
	case messages.StartExisting:
		m.onStartExisting(ctx, msg.ID)
	case *messages.UpdateBox:
		m.onUpdate(ctx, msg)
	case messages.UpdateBox:
		m.onUpdate(ctx, &msg)
	case *messages.NodeInfoRequest:
		m.onNodeInfo(ctx)
	case *messages.EventsSubscribe:
		m.onSubscribe(ctx, msg)
	case *messages.EventsUnsubscribe:
		m.onUnsubscribe(ctx, msg)
	case *messages.LogsRequest:
		m.logs.serve(ctx.Sender(), msg)
	case *messages.InspectRequest:
		m.onInspect(ctx, msg.ID)
	case *cancelStart:
		m.onCancelStart(ctx, msg)
	case *doorTick:
		m.onTick(ctx)
	case *leaseEvent:
		m.onLease(msg)
	case *joinDone:
		m.onJoinDone(ctx, msg)
	case *reclaimDone:
		m.onReclaimDone(ctx, msg)
	case *claimDone:
		m.onClaimDone(ctx, msg)
	case *startReplied:
		m.onStartReplied(msg)
	case *startChecked:
		m.onStartChecked(msg)
	case *localClaimed:
		m.onLocalClaimed(msg)
	case *releaseDone:
		m.onReleaseDone(ctx, msg)
	case *boxRemovedHere:
		m.onBoxRemoved(msg.id)
	case *fenceDone:
		m.onFenceDone(msg)
	case *scanDone:
		m.onScanDone(msg)
	case *takeoverDone:
		m.onTakeoverDone(msg)
	case *endpointLost:
		m.onEndpointLost(msg.address)
	case *memberLeave:
		m.onLeave(ctx)
	default:
		// Every other request (stop, kill, list, metrics, the supervisor's
		// own messages) is the root's, with the sender kept.
		ctx.Forward(m.root)
	}
}

func (m *member) onStarted(ctx actor.Context) {
	m.self = ctx.Self()
	m.tickCancel = m.core.sched.SendRepeatedly(doorTickInterval, doorTickInterval, m.self, &doorTick{})
	if m.unsubEvent == nil {
		self, root := m.self, m.core.root
		m.unsubEvent = m.sup.subs.add(EventFilter{Kinds: []string{"BoxRemoved"}}, func(ev messages.Event) {
			root.Send(self, &boxRemovedHere{id: ev.Box()})
		})
	}
}

func (m *member) onStopping() {
	if m.tickCancel != nil {
		m.tickCancel()
		m.tickCancel = nil
	}
}

// onEnvelope serves a request from another host: a subscription keeps the
// remote sender itself; anything else is decoded and handled here as a
// local request whose answer is encoded back (remoting.Forward).
func (m *member) onEnvelope(ctx actor.Context, env *wire.Envelope) {
	if msg, err := wire.Decode(env); err == nil {
		switch msg.(type) {
		case *messages.EventsSubscribe, *messages.EventsUnsubscribe:
			// The subscriber is the remote sender, not a one-shot adaptor.
			m.receiveRemoteSub(ctx, msg)
			return
		}
	}
	remoting.Forward(ctx.ActorSystem(), env, ctx.Sender(), m.self, remoteReplyTTL)
}

// accepting returns nil when this member may take a box that needs
// ownership, else why not (messages.ErrUnavailable).
func (m *member) accepting(now time.Time) error {
	switch {
	case m.left:
		return messages.Errorf(messages.ErrShuttingDown, "member %s is leaving the cluster", m.cfg.Node)
	case m.session == nil:
		return messages.Errorf(messages.ErrUnavailable, "member %s has no etcd session yet (etcd %v unreachable, or its previous session has not expired)", m.cfg.Node, m.cfg.Etcd)
	case !m.reclaimed:
		return messages.Errorf(messages.ErrUnavailable, "member %s is reclaiming its boxes' ownership records", m.cfg.Node)
	}
	if err := m.fence.Accepting(now); err != nil {
		return messages.Errorf(messages.ErrUnavailable, "member %s: %v", m.cfg.Node, err)
	}
	return nil
}

// touch records an ownership change of id (scans that began earlier do not
// judge it).
func (m *member) touch(id string) {
	m.epoch++
	m.changed[id] = m.epoch
}

// ask sends msg to the root and waits for the reply, from a helper
// goroutine (never from the door's).
func (m *member) ask(ctx context.Context, msg any) (any, error) {
	in := m.core.newInbox()
	defer in.close()
	m.core.root.RequestWithCustomSender(m.root, msg, in.pid)
	select {
	case v := <-in.ch:
		return replyValue(v)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tell sends msg to the door from a helper goroutine.
func (m *member) tell(msg any) { m.core.root.Send(m.self, msg) }

// etcdCtx bounds one etcd operation.
func etcdCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), etcdOpTimeout)
}

// ownershipError turns an ownership error into the reply's: what etcd could
// not decide is ErrUnavailable, with the cause's text.
func ownershipError(err error) *messages.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ownership.ErrUnavailable), errors.Is(err, ownership.ErrSessionOver):
		return messages.Errorf(messages.ErrUnavailable, "ownership record: %v", err)
	}
	return messages.AsError(err)
}

// relay is a one-shot process that hands the first message it receives to
// fn on a helper goroutine: the door routes a reply through it when it must
// see the reply on its way to the caller.
type relay struct {
	core *core
	pid  *actor.PID
	fn   func(any)
	once sync.Once
}

// newRelay registers a relay.
func (m *member) newRelay(fn func(reply any)) *actor.PID {
	r := &relay{core: m.core, fn: fn}
	reg := m.core.system.ProcessRegistry
	r.pid, _ = reg.Add(r, "boxsup-cluster-relay-"+reg.NextId())
	return r.pid
}

func (r *relay) SendUserMessage(_ *actor.PID, message any) {
	r.once.Do(func() {
		r.core.system.ProcessRegistry.Remove(r.pid)
		msg := actor.UnwrapEnvelopeMessage(message)
		r.core.goHelper(func() { r.fn(msg) })
	})
}
func (r *relay) SendSystemMessage(*actor.PID, any) {}
func (r *relay) Stop(*actor.PID)                   {}

// statusErr is the error of a BoxStatus reply, or of whatever else came.
func statusErr(reply any) error {
	_, err := statusOf(replyValue(reply))
	return err
}

// String describes the member for logs.
func (m *member) String() string {
	return fmt.Sprintf("member %s of cluster %s (%s)", m.cfg.Node, m.cfg.Name, m.fence)
}
