package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// Supervisor is the embedder's handle on boxsup: it owns one home, one
// RootSupervisor actor and, unless Config.System was given, the actor system.
// All methods are safe for concurrent use.
type Supervisor struct {
	core     *core
	rootPID  *actor.PID
	lock     *layout.Lock
	ownSys   bool
	shutting atomic.Bool
	subs     subscribers
	once     sync.Once
}

// NewSupervisor opens (creating if needed) the home, takes its lock
// (messages.ErrHomeLocked if another supervisor holds it), starts the root
// actor and returns once every box found in the home has been reconciled:
// live shims adopted, dead ones reported.
func NewSupervisor(cfg Config) (*Supervisor, error) {
	cfg = cfg.withDefaults()
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
	lock, err := home.Lock()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		if cfg.Logger, err = logging.New(logging.Options{}); err != nil {
			_ = lock.Release()
			return nil, err
		}
	}
	if cfg.ShimBinary == "" {
		// Not fatal here: a supervisor that only adopts needs no shim. A
		// Start without one fails with ErrShimNotFound.
		cfg.ShimBinary, _ = FindShim()
	}
	sys, own := cfg.System, cfg.System == nil
	if own {
		sys = actor.NewActorSystem(actor.WithLoggerFactory(protoactorLogger(cfg.Logger)))
	}
	sum := sha256.Sum256([]byte(cfg.Home))
	tag := hex.EncodeToString(sum[:])[:12]
	c := &core{
		cfg:          cfg,
		home:         home,
		log:          cfg.Logger,
		system:       sys,
		root:         sys.Root,
		sched:        scheduler.NewTimerScheduler(sys.Root),
		cgroupParent: "boxsup/" + tag,
		entries:      map[string]*boxEntry{},
		ioSlots:      make(chan struct{}, ioSlotCount()),
	}
	s := &Supervisor{core: c, lock: lock, ownSys: own}
	s.subs.init(sys)
	if cfg.OnEvent != nil {
		s.subs.add(cfg.OnEvent) // before the root exists: nothing of the boot is missed
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
	if _, err := s.request(context.Background(), &awaitBoot{}); err != nil {
		_ = s.Shutdown(context.Background(), LeaveRunning)
		return nil, fmt.Errorf("reconciling %s: %w", cfg.Home, err)
	}
	return s, nil
}

// protoactorLogger routes protoactor's slog output into logrus. Its Info
// chatter ("actor system started", supervision notes) is demoted below Warn
// unless boxsup itself logs at debug or finer.
func protoactorLogger(log *logrus.Logger) func(*actor.ActorSystem) *slog.Logger {
	min := slog.LevelWarn
	if log.IsLevelEnabled(logrus.DebugLevel) {
		min = slog.LevelDebug
	}
	return func(*actor.ActorSystem) *slog.Logger {
		return slog.New(logging.NewSlogHandler(log.WithField("lib", "protoactor"), min))
	}
}

// Root returns the RootSupervisor's PID, for callers that message it
// directly (every message type in package messages is understood).
func (s *Supervisor) Root() *actor.PID { return s.rootPID }

// System returns the actor system the supervisor runs in.
func (s *Supervisor) System() *actor.ActorSystem { return s.core.system }

// Home returns the absolute home directory.
func (s *Supervisor) Home() string { return s.core.home.Root }

// Logger returns the logger the supervisor writes to.
func (s *Supervisor) Logger() *logrus.Logger { return s.core.log }

// request sends msg to the root and waits for the reply, bounded by ctx (or
// Config.RequestTimeout when ctx has no deadline).
func (s *Supervisor) request(ctx context.Context, msg any) (any, error) {
	timeout := s.core.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	return s.core.ask(ctx, s.rootPID, msg, timeout)
}

// statusRequest sends msg and unpacks a BoxStatus reply.
func (s *Supervisor) statusRequest(ctx context.Context, msg any) (messages.BoxStatus, error) {
	v, err := s.request(ctx, msg)
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

// Start creates box req.ID and starts it. It returns when the box is ready,
// or with the reason it is not: messages.ErrInvalidID, ErrAlreadyExists,
// ErrBadSpec, ErrShimNotFound, ErrStartFailed, ErrReadyTimeout. Bad input is
// rejected before anything is written.
func (s *Supervisor) Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error) {
	if s.shutting.Load() {
		return messages.BoxStatus{}, messages.ErrShuttingDown
	}
	if err := s.checkStart(&req); err != nil {
		return messages.BoxStatus{ID: req.ID}, err
	}
	return s.statusRequest(ctx, &req)
}

// checkStart validates a StartBox in the caller's goroutine, so that the
// actors never do this I/O and bad input leaves no trace.
func (s *Supervisor) checkStart(req *messages.StartBox) error {
	if err := layout.ValidateID(req.ID); err != nil {
		return err
	}
	if req.Spec.BoxID == "" {
		req.Spec.BoxID = req.ID
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
	if err := req.Restart.Validate(); err != nil {
		return err
	}
	if req.StopTimeout < 0 || req.ReadyTimeout < 0 {
		return messages.Errorf(messages.ErrBadSpec, "stop_timeout and ready_timeout must not be negative")
	}
	bin, err := s.core.shimFor(req.Spec.Engine)
	if err != nil {
		return err
	}
	if bin == "" {
		return messages.Errorf(messages.ErrShimNotFound, "%s (set Config.ShimBinary)", ShimBinaryName)
	}
	if !isExecutable(bin) {
		return messages.Errorf(messages.ErrShimNotFound, "%s", bin)
	}
	return nil
}

// StartExisting starts box id again from its stored spec when it is at rest
// (exited or failed), and returns when it is ready, like Start. A running box
// is returned as it is; one that is starting, stopping or being removed is
// messages.ErrBusy.
func (s *Supervisor) StartExisting(ctx context.Context, id string) (messages.BoxStatus, error) {
	if s.shutting.Load() {
		return messages.BoxStatus{}, messages.ErrShuttingDown
	}
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.StartExisting{ID: id})
}

// Stop stops box id gracefully: SIGTERM, then SIGKILL to its whole tree
// after timeout (0: the box's StopTimeout). It returns after the shim
// exited; BoxStatus.LastExit holds the status and Killed says whether the
// timeout expired. Stopping a box that is not running returns at once.
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

// Status returns box id's current status.
func (s *Supervisor) Status(ctx context.Context, id string) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	return s.statusRequest(ctx, &messages.StatusRequest{ID: id})
}

// List returns every box's status, sorted by ID.
func (s *Supervisor) List(ctx context.Context) ([]messages.BoxStatus, error) {
	v, err := s.request(ctx, &messages.ListRequest{})
	if err != nil {
		return nil, err
	}
	lr, ok := v.(*messages.ListResponse)
	if !ok {
		return nil, messages.Errorf(messages.ErrInternal, "unexpected reply %T", v)
	}
	return lr.Boxes, nil
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

// Shutdown closes the supervisor within ctx. With StopAll every box is
// stopped first, in parallel, each within min(its stop timeout, what is left
// of ctx). With LeaveRunning boxes are left alone: detached shims keep
// running for the next supervisor to adopt; attached ones stop themselves
// when their keepalive pipe closes. Shutdown is idempotent.
func (s *Supervisor) Shutdown(ctx context.Context, mode ShutdownMode) error {
	var err error
	s.once.Do(func() { err = s.shutdown(ctx, mode) })
	return err
}

func (s *Supervisor) shutdown(ctx context.Context, mode ShutdownMode) error {
	s.shutting.Store(true)
	var errs []error
	{
		// StopAll stops every box; LeaveRunning stops only the attached
		// ones, which cannot outlive this process anyway (their keepalive
		// closes), so that they are reaped rather than left as zombies of
		// an embedder that goes on running.
		budget := 30 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			budget = time.Until(dl) - 200*time.Millisecond
		}
		if budget < 0 {
			budget = 0
		}
		v, err := s.request(ctx, &stopAll{timeoutCap: budget, attachedOnly: mode == LeaveRunning})
		if err != nil {
			errs = append(errs, fmt.Errorf("stopping boxes: %w", err))
		} else if d, ok := v.(*stopAllDone); ok && len(d.errs) > 0 {
			errs = append(errs, fmt.Errorf("stopping boxes: %v", d.errs))
		}
	}
	if err := s.core.root.PoisonFuture(s.rootPID).Wait(); err != nil {
		errs = append(errs, fmt.Errorf("stopping the root supervisor: %w", err))
	}
	s.core.closeKeepalives()
	s.core.cgroupRemovals.Wait() // each is bounded (shimproc waits at most 500 ms)
	if err := shimproc.RemoveCgroupParent(s.core.cgroupParent); err != nil {
		errs = append(errs, err)
	}
	s.subs.closeAll()
	if s.ownSys {
		s.core.system.Shutdown()
	}
	if err := s.lock.Release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
