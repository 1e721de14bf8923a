package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// Supervisor is the embedder's handle on boxsup: it owns one home, one root
// supervisor actor and, unless Config.System was given, the actor system.
// All methods are safe for concurrent use.
//
// Every method that takes a context follows it: when the context ends first
// the method returns an error that matches context.Canceled or
// context.DeadlineExceeded under errors.Is. A method whose context has no
// deadline is bounded by Config.RequestTimeout, whose expiry is
// messages.ErrTimeout (which matches context.DeadlineExceeded too).
type Supervisor struct {
	core    *core
	rootPID *actor.PID
	lock    *layout.Lock
	ownSys  bool
	subs    subscribers

	// member and door are set when the supervisor is a cluster member
	// (Config.Cluster; cluster_join.go).
	member      *member
	door        *actor.PID
	leftCluster bool

	shutMu  sync.Mutex
	closed  bool
	stopped bool // every box that had to be stopped was
}

// killWait bounds how long a kill (of one box, or of all at shutdown) may
// take to be confirmed by the shims' exits.
const killWait = 10 * time.Second

// cancelWait bounds the wait for a cancelled start to be undone (the box
// killed and, when new, removed) before Start returns.
const cancelWait = killWait + 5*time.Second

// NewSupervisor opens (creating if needed) the home, takes its lock
// (messages.ErrHomeLocked if another supervisor holds it), starts the root
// actor and returns once every box found in the home has been reconciled:
// live shims adopted, dead ones reported, unverifiable ones marked unknown.
// ctx bounds the reconcile; when it ends first, the supervisor is shut down
// again (leaving every box as it is) and ctx's error returned.
func NewSupervisor(ctx context.Context, cfg Config) (*Supervisor, error) {
	cfg = cfg.withDefaults()
	if cfg.Cluster != nil {
		if err := cfg.Cluster.validate(); err != nil {
			return nil, err
		}
	}
	if cfg.Home == "" {
		h, err := layout.ResolveHome()
		if err != nil {
			return nil, err
		}
		cfg.Home = h
	}
	abs, err := filepath.Abs(cfg.Home)
	if err != nil {
		return nil, err
	}
	cfg.Home = abs
	home, err := layout.Open(cfg.Home)
	if err != nil {
		return nil, err
	}
	// Everything derived from the home's path (the actors' names, the
	// cgroup parent, the control socket) uses its canonical form: a home
	// reached through a symbolic link is the same home.
	cfg.Home = home.Root
	lock, err := home.Lock()
	if err != nil {
		return nil, err
	}
	// A logger given by the embedder gets the secret-redaction hook too
	// (idempotent), or is wrapped by one: nothing boxsup logs through it
	// may carry a secret.
	if cfg.Logger, err = logging.Redacting(cfg.Logger); err != nil {
		_ = lock.Release()
		return nil, err
	}
	var findShimErr error
	if cfg.ShimBinary == "" {
		// Not fatal here: a supervisor that only adopts needs no shim. A
		// Start without one fails with this error (ErrShimNotFound), which
		// names any candidate refused as untrusted.
		cfg.ShimBinary, findShimErr = FindShim()
	}
	sys, own := cfg.System, cfg.System == nil
	if own {
		sys = actor.NewActorSystem(actor.WithLoggerFactory(ProtoactorLogger(cfg.Logger)))
	}
	sum := sha256.Sum256([]byte(cfg.Home))
	tag := hex.EncodeToString(sum[:])[:12]
	c := &core{
		cfg:          cfg,
		findShimErr:  findShimErr,
		home:         home,
		log:          cfg.Logger,
		system:       sys,
		root:         sys.Root,
		sched:        scheduler.NewTimerScheduler(sys.Root),
		cgroupParent: "boxsup/" + tag,
		hooks:        cfg.hooks,
		entries:      map[string]*boxEntry{},
		ioSlots:      make(chan struct{}, ioSlotCount()),
		cgroupSlots:  make(chan struct{}, cgroupRemovalSlots),
		events:       newEventLog(cfg.EventHistory, time.Now().UTC()),
		closed:       make(chan struct{}),
	}
	c.health = c.newHealthScheduler()
	c.sweepHome()
	s := &Supervisor{core: c, lock: lock, ownSys: own}
	s.subs.init(sys, home.Root, c.events)
	if cfg.OnEvent != nil {
		s.subs.add(EventFilter{}, cfg.OnEvent) // before the root exists: nothing of the boot is missed
	}
	props := actor.PropsFromProducer(func() actor.Actor { return newRoot(c) }, actor.WithGuardian(rootGuardian()))
	pid, err := sys.Root.SpawnNamed(props, "boxsup-"+tag)
	if err != nil {
		s.subs.closeAll()
		_ = lock.Release()
		if own {
			sys.Shutdown()
		}
		return nil, fmt.Errorf("spawning the root supervisor: %w", err)
	}
	s.rootPID = pid
	c.rootPID.Store(pid)
	if _, err := s.request(ctx, &awaitBoot{}); err != nil {
		_ = s.Shutdown(context.Background(), LeaveRunning)
		return nil, fmt.Errorf("reconciling %s: %w", cfg.Home, err)
	}
	if cfg.Cluster != nil {
		if err := s.startCluster(); err != nil {
			_ = s.Shutdown(context.Background(), LeaveRunning)
			return nil, err
		}
	}
	return s, nil
}

// ProtoactorLogger routes protoactor's logs into log, with the field
// lib=protoactor: pass it to actor.WithLoggerFactory when you create the
// actor system you give as Config.System (a supervisor that creates its own
// system does this itself). protoactor's Info chatter ("actor system
// started", supervision notes) is kept only when log is at debug or finer.
// Secrets are scrubbed only once NewSupervisor has installed its redaction
// on log (see Config.Logger); protoactor's own lines carry none.
func ProtoactorLogger(log logrus.FieldLogger) func(*actor.ActorSystem) *slog.Logger {
	min := slog.LevelWarn
	if logging.LevelEnabled(log, logrus.DebugLevel) {
		min = slog.LevelDebug
	}
	return func(*actor.ActorSystem) *slog.Logger {
		return slog.New(quietRemote{logging.NewSlogHandler(log.WithField("lib", "protoactor"), min)})
	}
}

// Root returns the root supervisor's PID, for callers that message it
// directly: every request type of package messages (StartBox, StartExisting,
// Stop, Kill, SignalBox, Remove, Adopt, StatusRequest, ListRequest,
// MetricsRequest, MetricsAllRequest) is answered, StartBox after the same
// checks as Start.
//
// For a cluster member it is the member's front door (the same PID peers
// reach at the well-known name), which claims ownership before a start.
func (s *Supervisor) Root() *actor.PID { return s.front() }

// System returns the actor system the supervisor runs in.
func (s *Supervisor) System() *actor.ActorSystem { return s.core.system }

// Home returns the absolute home directory.
func (s *Supervisor) Home() string { return s.core.home.Root }

// Logger returns the logger the supervisor writes to.
// It is Config.Logger itself when that was a *logrus.Logger or
// *logrus.Entry, and otherwise the redacting logger that forwards to it.
func (s *Supervisor) Logger() logrus.FieldLogger { return s.core.log }

// requestCtx bounds a request by ctx, and by Config.RequestTimeout when ctx
// has no deadline; done turns the end of the returned context into the
// error to return.
func (s *Supervisor) requestCtx(ctx context.Context) (context.Context, context.CancelFunc, func() error) {
	if _, ok := ctx.Deadline(); ok {
		c, cancel := context.WithCancel(ctx)
		return c, cancel, func() error { return ctx.Err() }
	}
	timeout := s.core.cfg.RequestTimeout
	c, cancel := context.WithTimeout(ctx, timeout)
	return c, cancel, func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return messages.Errorf(messages.ErrTimeout, "no reply within %s (Config.RequestTimeout)", timeout)
	}
}

// request sends msg to the root and waits for the reply, bounded as
// requestCtx says, and by Shutdown: a request an actor took but never
// answered because it was stopped is not waited for until RequestTimeout.
func (s *Supervisor) request(ctx context.Context, msg any) (any, error) {
	rctx, cancel, done := s.requestCtx(ctx)
	defer cancel()
	in := s.core.newInbox()
	defer in.close()
	s.core.root.RequestWithCustomSender(s.front(), msg, in.pid)
	select {
	case v := <-in.ch:
		return replyValue(v)
	case <-rctx.Done():
		return nil, done()
	case <-s.core.closed:
		return s.lastReply(in)
	}
}

// lastReply is a request's answer once the supervisor has shut down: the
// reply, if it came after all, else messages.ErrShuttingDown.
func (s *Supervisor) lastReply(in *replyInbox) (any, error) {
	select {
	case v := <-in.ch:
		return replyValue(v)
	default:
		return nil, messages.Errorf(messages.ErrShuttingDown, "no answer: the supervisor shut down first")
	}
}

// statusOf unpacks a BoxStatus reply.
func statusOf(v any, err error) (messages.BoxStatus, error) {
	if err != nil {
		return messages.BoxStatus{}, err
	}
	switch st := v.(type) {
	case messages.BoxStatus:
		return st, messages.Err(st.Err)
	case *messages.BoxStatus:
		return *st, messages.Err(st.Err)
	}
	return messages.BoxStatus{}, messages.Errorf(messages.ErrInternal, "unexpected reply %T", v)
}

// statusRequest sends msg, a request to one box, and unpacks a BoxStatus
// reply. A ctx already done sends nothing, so that its error can be read as
// "nothing happened" (see the package documentation on contexts).
func (s *Supervisor) statusRequest(ctx context.Context, msg any) (messages.BoxStatus, error) {
	if err := ctx.Err(); err != nil {
		return messages.BoxStatus{}, err
	}
	return statusOf(s.request(ctx, msg))
}

// Start creates box req.ID and starts it. It returns when the box is ready,
// or with the reason it is not: messages.ErrInvalidID, ErrAlreadyExists,
// ErrBadSpec, ErrShimNotFound, ErrStartFailed, ErrReadyTimeout. Bad input is
// rejected before anything is written.
//
// Like os/exec's CommandContext, a ctx that ends before the box is ready
// stops the start: the shim is killed, the box (new, created by this call)
// is removed, and Start returns ctx's error once that is done. After ready,
// ctx no longer matters.
func (s *Supervisor) Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error) {
	if s.core.shutting.Load() {
		return messages.BoxStatus{ID: req.ID}, messages.Errorf(messages.ErrShuttingDown, "box %q was not started", req.ID)
	}
	if err := s.core.validateStart(&req); err != nil {
		// The ID too may be what holds a secret.
		return messages.BoxStatus{ID: messages.ScrubSecrets(req.ID, req.Spec.SecretValues())}, err
	}
	if err := s.core.checkShim(req.Spec.Engine); err != nil {
		return messages.BoxStatus{ID: req.ID}, err
	}
	st, err := s.startRequest(ctx, req.ID, &req)
	// The box's own errors name its paths, which cannot hold a secret once
	// validateStart passed; scrub anyway, as the last line before the caller.
	return st, messages.RedactSecrets(err, req.Spec.SecretValues())
}

// StartExisting starts box id again from its stored spec when it is at rest
// (exited or failed), and returns when it is ready, like Start (a ctx that
// ends first stops it again; the box stays). A running box is returned as it
// is; one that is stopping, unknown or being removed is messages.ErrBusy.
func (s *Supervisor) StartExisting(ctx context.Context, id string) (messages.BoxStatus, error) {
	if s.core.shutting.Load() {
		return messages.BoxStatus{ID: id}, messages.Errorf(messages.ErrShuttingDown, "box %q was not started", id)
	}
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.startRequest(ctx, id, &messages.StartExisting{ID: id})
}

// startRequest sends a start and waits for ready; when ctx ends first it
// asks the box to undo the start and waits (bounded) until it has.
func (s *Supervisor) startRequest(ctx context.Context, id string, msg any) (messages.BoxStatus, error) {
	if err := ctx.Err(); err != nil {
		return messages.BoxStatus{ID: id}, err // nothing sent, nothing to undo
	}
	rctx, cancel, done := s.requestCtx(ctx)
	defer cancel()
	in := s.core.newInbox()
	defer in.close()
	s.core.root.RequestWithCustomSender(s.front(), msg, in.pid)
	select {
	case v := <-in.ch:
		return statusOf(replyValue(v))
	case <-rctx.Done():
	case <-s.core.closed:
		st, err := statusOf(s.lastReply(in))
		st.ID = id
		return st, err
	}
	ctxErr := done()
	s.core.root.Send(s.front(), &cancelStart{id: id, caller: in.pid})
	t := time.NewTimer(cancelWait)
	defer t.Stop()
	select {
	case v := <-in.ch:
		st, err := statusOf(replyValue(v))
		if err == nil {
			return st, nil // it became ready just before the cancellation arrived
		}
		return st, ctxErr
	case <-t.C:
		s.core.log.WithField("box_id", id).Warn("a cancelled start was not undone in time")
		return messages.BoxStatus{ID: id}, ctxErr
	}
}

// validateStart checks and completes a StartBox without I/O: the facade and
// the root both call it, so that a StartBox sent straight to the root is
// refused the same way. No secret of the spec is quoted in its errors: a
// request that holds one outside its entry is refused first, and whatever
// the error, its text is scrubbed of the spec's secret values.
func (c *core) validateStart(req *messages.StartBox) error {
	return messages.RedactSecrets(c.checkStart(req), req.Spec.SecretValues())
}

// checkStart is validateStart before the scrubbing.
func (c *core) checkStart(req *messages.StartBox) error {
	if req.Spec.BoxID == "" {
		req.Spec.BoxID = req.ID
	}
	if err := req.CheckSecretsConfined(); err != nil {
		return err
	}
	if err := layout.ValidateID(req.ID); err != nil {
		return err
	}
	if req.Spec.BoxID != req.ID {
		return messages.Errorf(messages.ErrBadSpec, "box_id: %q does not match the box ID %q", req.Spec.BoxID, req.ID)
	}
	if req.Spec.Engine == "" {
		req.Spec.Engine = messages.EngineProcess
	}
	if req.Spec.Version == 0 {
		req.Spec.Version = messages.SpecVersion
	}
	if err := req.Spec.Validate(); err != nil {
		return err
	}
	if req.Spec.RestartInPlace {
		// The supervisor sets it per spawn, from the restart policy and
		// the engine's capabilities: a caller's value could not be honoured
		// as given.
		return messages.Errorf(messages.ErrBadSpec, "restart_in_place: set by the supervisor from the restart policy, not by a caller")
	}
	for _, f := range []struct{ name, path string }{
		{"console_output", req.Spec.ConsoleOutput},
		{"exit_file", req.Spec.ExitFile},
	} {
		// The supervisor reads the box's own console.log (Logs) and
		// exit.json (the exit record): a file elsewhere would be written
		// and never read.
		if f.path != "" {
			return messages.Errorf(messages.ErrBadSpec, "%s: set by the supervisor to the box's own file, not by a caller", f.name)
		}
	}
	if err := req.Restart.Validate(); err != nil {
		return err
	}
	if req.StopTimeout < 0 || req.ReadyTimeout < 0 {
		return messages.Errorf(messages.ErrBadSpec, "stop_timeout and ready_timeout must not be negative")
	}
	if err := labels.Validate(req.Labels); err != nil {
		return err
	}
	if err := validateHealth(req); err != nil {
		return err
	}
	if err := c.checkPlacement(req); err != nil {
		return err
	}
	// Detach is a supervision option; the shim learns it from its spec.
	req.Detach = req.Detach || req.Spec.Detach
	req.Spec.Detach = req.Detach
	_, err := c.shimFor(req.Spec.Engine)
	return err
}

// validateUpdate checks an UpdateBox without I/O (the facade and the root
// both call it).
func validateUpdate(u *messages.UpdateBox) error {
	if err := layout.ValidateID(u.ID); err != nil {
		return err
	}
	if u.Restart != nil {
		if err := u.Restart.Validate(); err != nil {
			return err
		}
	}
	if u.StopTimeout != nil && *u.StopTimeout < 0 {
		return messages.Errorf(messages.ErrBadSpec, "stop_timeout must not be negative")
	}
	if u.Labels != nil {
		if err := labels.Validate(u.Labels); err != nil {
			return err
		}
	}
	if u.Labels != nil && (len(u.AddLabels) > 0 || len(u.RemoveLabels) > 0) {
		return messages.Errorf(messages.ErrBadSpec, "update of %q: labels replaces the whole set and cannot be combined with add_labels or remove_labels", u.ID)
	}
	if err := labels.Validate(u.AddLabels); err != nil {
		return err
	}
	for _, k := range u.RemoveLabels {
		if err := labels.ValidateKey(k); err != nil {
			return err
		}
		if _, both := u.AddLabels[k]; both {
			return messages.Errorf(messages.ErrBadSpec, "update of %q: label %q is both added and removed", u.ID, k)
		}
	}
	return nil
}

// Update changes box id's supervision settings in place (a nil field of u
// is left as it is; u.Labels, when not nil, replaces the whole set, while
// u.AddLabels and u.RemoveLabels change single keys of the set the box has
// when the update is applied, so concurrent updaters never drop each
// other's labels),
// durably, without touching its process: the new restart policy judges the
// next exit, the new stop timeout the next stop. It returns once the change
// is on disk.
func (s *Supervisor) Update(ctx context.Context, u messages.UpdateBox) (messages.BoxStatus, error) {
	if err := validateUpdate(&u); err != nil {
		return messages.BoxStatus{ID: u.ID}, err
	}
	return s.statusRequest(ctx, &u)
}

// Stop stops box id gracefully: SIGTERM, then SIGKILL to its whole tree
// after timeout (0: the box's StopTimeout). It returns after the shim
// exited; BoxStatus.LastExit holds the status and Killed says whether the
// timeout expired. Stopping a box that is not running returns at once. A box
// whose process cannot be verified (state unknown) is killed through its
// cgroup, or, without one, refused with messages.ErrUnverified.
func (s *Supervisor) Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.Stop{ID: id, Timeout: timeout})
}

// Kill sends SIGKILL to box id's whole tree now and returns after it exited.
func (s *Supervisor) Kill(ctx context.Context, id string) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.Kill{ID: id})
}

// Signal sends one signal ("HUP", "SIGUSR1", "10") to box id's shim.
func (s *Supervisor) Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.SignalBox{ID: id, Signal: signal})
}

// Remove deletes box id's directory. A running box is messages.ErrBusy
// unless force, which stops it first.
func (s *Supervisor) Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.Remove{ID: id, Force: force})
}

// Adopt hands over process pid, a shim another tool started for box id
// (`SHIM --box-id ID`, running one of the configured shim binaries), to the
// supervisor. The box must exist and be at rest. The process is verified
// through a pidfd before anything else; one that is not a shim of the box
// is messages.ErrIdentityMismatch and is never signalled.
func (s *Supervisor) Adopt(ctx context.Context, id string, pid int) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.Adopt{ID: id, PID: pid})
}

// Status returns box id's current status.
func (s *Supervisor) Status(ctx context.Context, id string) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.StatusRequest{ID: id})
}

// ListOptions selects the boxes List returns; the zero value selects all.
type ListOptions struct {
	// Labels selects by label, in Kubernetes' selector syntax
	// ("app=web,tier!=db", "env in (a,b)", "!key"); a bad selector is
	// messages.ErrBadSpec.
	Labels string
	// States selects boxes in one of these states.
	States []messages.BoxState
}

// List returns the status of every box opts selects, sorted by ID.
func (s *Supervisor) List(ctx context.Context, opts ListOptions) ([]messages.BoxStatus, error) {
	sel, err := labels.Parse(opts.Labels)
	if err != nil {
		return nil, err
	}
	v, err := s.request(ctx, &messages.ListRequest{})
	if err != nil {
		return nil, err
	}
	lr, ok := v.(*messages.ListResponse)
	if !ok {
		return nil, messages.Errorf(messages.ErrInternal, "unexpected reply %T", v)
	}
	out := lr.Boxes[:0:0]
	for _, st := range lr.Boxes {
		if sel.Matches(st.Labels) && (len(opts.States) == 0 || slices.Contains(opts.States, st.State)) {
			out = append(out, st)
		}
	}
	return out, nil
}

// Metrics samples box id's process tree.
func (s *Supervisor) Metrics(ctx context.Context, id string) (messages.BoxMetrics, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxMetrics{ID: id}, err
	}
	v, err := s.request(ctx, &messages.MetricsRequest{ID: id})
	if err != nil {
		return messages.BoxMetrics{ID: id}, err
	}
	mr, ok := v.(*messages.MetricsResponse)
	if !ok {
		return messages.BoxMetrics{ID: id}, messages.Errorf(messages.ErrInternal, "unexpected reply %T", v)
	}
	return mr.Metrics, messages.Err(mr.Err)
}

// MetricsAll samples every live box, in parallel, sorted by ID.
func (s *Supervisor) MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error) {
	v, err := s.request(ctx, &messages.MetricsAllRequest{})
	if err != nil {
		return nil, err
	}
	mr, ok := v.(*messages.MetricsAllResponse)
	if !ok {
		return nil, messages.Errorf(messages.ErrInternal, "unexpected reply %T", v)
	}
	return mr.Boxes, nil
}

// Shutdown closes the supervisor. With StopAll every box is stopped first,
// in parallel, each within min(its stop timeout, what is left of ctx); with
// LeaveRunning detached boxes are left running for the next supervisor and
// attached ones (which cannot outlive it: their keepalive closes) are
// stopped the same way, so that they are reaped rather than left as zombies.
// No start is left half done: one in flight is stopped (its Start returns
// an error), except that LeaveRunning first sees a detached box's start
// through and leaves the box running (its Start returns the outcome).
// When ctx has no time left, those boxes are killed at once instead, and
// Shutdown still waits (boundedly) for their exits; it then returns an error
// matching ctx's.
//
// Shutdown is idempotent: a call after a successful one returns nil, and a
// call after a failed one (a box that would not stop) finishes the job. It
// may not be called from an event callback (it would wait for itself): that
// is refused with messages.ErrBusy.
func (s *Supervisor) Shutdown(ctx context.Context, mode ShutdownMode) error {
	if s.subs.inCallback() {
		return messages.Errorf(messages.ErrBusy, "Shutdown called from an event callback, whose delivery it would wait for; call it from another goroutine")
	}
	s.shutMu.Lock()
	defer s.shutMu.Unlock()
	if s.closed {
		return nil
	}
	s.core.shutting.Store(true)
	if err := s.leaveCluster(ctx); err != nil {
		s.core.log.WithError(err).Error("leaving the cluster")
	}
	var ctxErr error
	if !s.stopped {
		var err error
		if ctxErr, err = s.stopBoxes(ctx, mode); err != nil {
			return err
		}
		s.stopped = true
	}
	if err := s.close(mode); err != nil {
		return errors.Join(err, ctxErr)
	}
	s.closed = true
	return ctxErr
}

// shutdownMargin is kept from the caller's deadline for the steps after the
// boxes are stopped.
const shutdownMargin = 200 * time.Millisecond

// stopBoxes stops (or kills) the boxes Shutdown must not leave behind.
// ctxErr reports that ctx left no time, so they were killed rather than
// stopped.
func (s *Supervisor) stopBoxes(ctx context.Context, mode ShutdownMode) (ctxErr, err error) {
	budget := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl) - shutdownMargin
	}
	now := ctx.Err() != nil || budget <= 0
	if now {
		ctxErr = ctx.Err()
		if ctxErr == nil {
			ctxErr = context.DeadlineExceeded
		}
		ctxErr = fmt.Errorf("no time left to stop boxes gracefully; they were killed: %w", ctxErr)
		budget = 0
	}
	// The stop-all request is bounded by its own budget, not by ctx: with
	// no time left the kills still have to be carried out and reaped.
	rctx, cancel := context.WithTimeout(context.Background(), budget+killWait+time.Second)
	defer cancel()
	v, err := s.request(rctx, &stopAll{timeoutCap: budget, now: now, attachedOnly: mode == LeaveRunning})
	if err != nil {
		return ctxErr, fmt.Errorf("stopping boxes: %w", err)
	}
	if d, ok := v.(*stopAllDone); ok && len(d.errs) > 0 {
		return ctxErr, fmt.Errorf("stopping boxes: %v", d.errs)
	}
	return ctxErr, nil
}

// close stops the root and releases everything the supervisor holds; mode
// is Shutdown's.
func (s *Supervisor) close(mode ShutdownMode) error {
	var errs []error
	if err := s.stopDoor(); err != nil {
		errs = append(errs, err)
	}
	if err := s.core.root.PoisonFuture(s.rootPID).Wait(); err != nil {
		errs = append(errs, fmt.Errorf("stopping the root supervisor: %w", err))
	}
	if lost := s.core.closeEntries(); len(lost) > 0 {
		errs = append(errs, messages.Errorf(messages.ErrPersist, "the last state of boxes %v could not be written to state.json", lost))
	}
	s.core.health.Close() // no box runs: nothing is probed any more
	s.core.helpers.Wait()
	// No helper runs: a spawned shim not taken by now reached no actor.
	killed, err := s.core.transit.settle(killWait, mode == LeaveRunning)
	if len(killed) > 0 {
		s.core.log.WithField("pids", killed).Warn("killed shims whose start no box actor saw through (it stopped first)")
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("killing shims no box actor took: %w", err))
	}
	// Each removal is bounded (shimproc waits at most 500 ms per cgroup for
	// members to finish exiting, a sweep 10 s for leftovers); two at a time.
	s.core.cgroupRemovals.Wait()
	if err := shimproc.RemoveCgroupParent(s.core.cgroupParent); err != nil {
		errs = append(errs, err)
	}
	s.subs.closeAll()
	select {
	case <-s.core.closed: // a Shutdown that failed after this point is being finished
	default:
		close(s.core.closed) // no event comes any more: waits end
	}
	if s.ownSys {
		s.core.system.Shutdown()
	}
	if err := s.lock.Release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
