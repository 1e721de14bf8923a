package lifecycle

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// The model-based test plays random sequences of events against one box's
// machine inside a simulated world (disk, processes, timers, callers) that
// behaves the way the actor and shimproc do, including every order their
// results may arrive in, and checks each step against a small reference
// model: the legal transitions of the state written to disk, and the
// promises the supervisor makes (one shim per box, every caller answered
// exactly once, no false success, unknown boxes never started).

var (
	modelSeed  = flag.Uint64("lifecycle.seed", 0, "replay one model-test sequence")
	modelRuns  = flag.Int("lifecycle.runs", 2000, "random sequences the model test plays")
	modelSteps = flag.Int("lifecycle.steps", 80, "events per sequence")
)

func TestModel(t *testing.T) {
	t.Parallel()
	if *modelSeed != 0 {
		runModel(t, *modelSeed, true)
		return
	}
	for seed := uint64(1); seed <= uint64(*modelRuns); seed++ {
		if !runModel(t, seed, false) {
			t.Fatalf("model test failed with seed %d; replay it with:\n\tgo test ./actors/internal/lifecycle -run TestModel -v -lifecycle.seed=%d", seed, seed)
		}
	}
}

// legalWrites is the reference model of the state written to state.json:
// from a state, the states a later write may say.
var legalWrites = map[messages.BoxState][]messages.BoxState{
	"": {messages.StateStarting, messages.StateRunning, messages.StateStopping, messages.StateExited,
		messages.StateFailed, messages.StateRestarting},
	messages.StateCreated:    {messages.StateStarting},
	messages.StateStarting:   {messages.StateStarting, messages.StateRunning, messages.StateStopping, messages.StateFailed, messages.StateExited, messages.StateRestarting},
	messages.StateRunning:    {messages.StateRunning, messages.StateStopping, messages.StateRestarting, messages.StateExited, messages.StateFailed},
	messages.StateStopping:   {messages.StateStopping, messages.StateExited, messages.StateFailed, messages.StateRestarting}, // restarting: an unhealthy stop
	messages.StateRestarting: {messages.StateStarting, messages.StateExited, messages.StateRestarting},
	messages.StateExited:     {messages.StateStarting, messages.StateExited, messages.StateRunning},
	messages.StateFailed:     {messages.StateStarting, messages.StateFailed, messages.StateRunning},
}

type mproc struct {
	pid        int
	gen        uint64
	alive      bool
	watched    bool // a Watch or WatchExit of this incarnation follows it
	readyWatch bool // followed by Watch (ready first, then exit)
	willReady  bool // the shim writes its ready byte
	readyDone  bool // Ready delivered
	exitFirst  bool // the exit may overtake the ready result (the reorder hook)
	exitDone   bool
	exit       messages.ExitRecord
	killedBy   string
	inPlace    bool                // spawned with the offer to restart its guest in place
	asking     bool                // its guest ended; it waits for AnswerGuest
	askedExit  messages.ExitRecord // the exit it reported
}

type mcall struct {
	kind     Kind
	inc      int
	answered int
	status   messages.BoxStatus
	wantCode messages.ErrorCode // a code the reply must carry, when known
}

type queued struct {
	inc    int
	ev     Event
	before func() // runs when the event is delivered
}

type world struct {
	t       *testing.T
	rng     *rand.Rand
	env     *fakeEnv
	hist    *History
	m       *Machine
	inc     int
	verbose bool
	trace   []string
	failed  bool

	disk      *messages.StateRecord // on disk
	submitted *messages.StateRecord // the newest record handed to the writer
	lastState messages.BoxState     // the state of the last record submitted
	writeQ    []Persist
	failNext  int
	dirExists bool
	opts      Options

	procs   []*mproc
	nextPID int
	queue   []queued
	timers  map[Kind]Event
	late    []Event

	calls   map[Waiter]*mcall
	nextW   Waiter
	gone    bool
	readyOK map[uint64]bool // generations whose shim signalled ready (or was adopted)

	checking  uint64          // the generation whose health checks run (0: none)
	healthyOK map[uint64]bool // generations with a passing check delivered (or adopted)
	guestRuns int             // numbers the guests' exits, so that each is recognisable on disk
}

func runModel(t *testing.T, seed uint64, verbose bool) (ok bool) {
	w := &world{
		t: t, rng: rand.New(rand.NewPCG(seed, 99)), env: newFakeEnv(seed), hist: &History{},
		timers: map[Kind]Event{}, calls: map[Waiter]*mcall{}, readyOK: map[uint64]bool{}, healthyOK: map[uint64]bool{},
		nextPID: 1000, verbose: verbose,
	}
	defer func() {
		if r := recover(); r != nil {
			w.failf("panic: %v", r)
		}
		if w.failed {
			t.Logf("seed %d trace:\n%s", seed, strings.Join(w.trace, "\n"))
			ok = false
		}
	}()
	w.env.noCgroup = w.rng.IntN(4) == 0
	w.opts = Options{Engine: "process", Restart: messages.RestartPolicy{
		Mode:        []messages.RestartMode{messages.RestartNo, messages.RestartOnFailure, messages.RestartAlways}[w.rng.IntN(3)],
		MaxRestarts: 1 + w.rng.IntN(4), InitialBackoff: time.Duration(w.rng.IntN(3)) * 50 * time.Millisecond,
	}, StopTimeout: time.Second, Detach: w.rng.IntN(2) == 0, ReadyTimeout: time.Second}
	if w.rng.IntN(3) != 0 {
		// Restart at once, the policy under which a shim restarts its
		// guest in place; now and then without a limit.
		w.opts.Restart.InitialBackoff = -1
		if w.rng.IntN(2) == 0 {
			w.opts.Restart.MaxRestarts = -1
		}
	}
	if w.rng.IntN(2) == 0 {
		w.opts.Health = &messages.HealthCheck{TCP: "127.0.0.1:80", Retries: 1 + w.rng.IntN(2)}
		if w.rng.IntN(2) == 0 {
			w.opts.ReadyWhen = messages.ReadyWhenHealthy
		}
		if w.rng.IntN(2) == 0 {
			w.opts.Restart.Mode = messages.RestartOnUnhealthy
		}
	}
	w.m = New("web", "/home", true, w.env, w.hist)
	w.request(Create{W: w.newCall(KCreate), Opts: w.opts})
	for step := 0; step < *modelSteps && !w.gone && !w.failed; step++ {
		w.step()
	}
	w.drain()
	w.finalChecks()
	return !w.failed
}

func (w *world) failf(format string, args ...any) {
	if !w.failed {
		w.t.Errorf(format, args...)
	}
	w.trace = append(w.trace, "FAIL: "+fmt.Sprintf(format, args...))
	w.failed = true
}

func (w *world) logf(format string, args ...any) {
	w.trace = append(w.trace, fmt.Sprintf(format, args...))
}

func (w *world) newCall(k Kind) Waiter {
	w.nextW++
	w.calls[w.nextW] = &mcall{kind: k, inc: w.inc}
	return w.nextW
}

// handle feeds one event and checks the step.
func (w *world) handle(ev Event) {
	if w.failed || w.gone {
		return
	}
	before := w.m.Phase()
	w.env.now = w.env.now.Add(time.Duration(w.rng.IntN(20)) * time.Millisecond)
	effs, err := w.m.Handle(ev)
	w.logf("%-11s %T %+v -> %s", before, ev, ev, w.m.Phase())
	if err != nil {
		w.failf("illegal transition: %v", err)
		return
	}
	for _, e := range effs {
		if _, isSpawn := e.(Spawn); isSpawn && before == Unknown {
			w.failf("an unknown box was spawned")
		}
		w.apply(e)
	}
	if n := w.alive(); n > 1 {
		w.failf("%d shims of the box are alive", n)
	}
	if ph := w.m.Phase(); w.checking != 0 && !probed(ph) {
		w.failf("health checks of generation %d still run in phase %s", w.checking, ph)
	}
}

func (w *world) request(ev Event) { w.handle(ev) }

func (w *world) alive() int {
	n := 0
	for _, p := range w.procs {
		if p.alive {
			n++
		}
	}
	return n
}

func (w *world) aliveProc() *mproc {
	for _, p := range w.procs {
		if p.alive {
			return p
		}
	}
	return nil
}

func (w *world) procOfGen(gen uint64) *mproc {
	for _, p := range w.procs {
		if p.gen == gen && p.watched {
			return p
		}
	}
	return nil
}

func (w *world) enqueue(ev Event) { w.queue = append(w.queue, queued{inc: w.inc, ev: ev}) }

// apply carries out one effect the way the actor and shimproc would.
func (w *world) apply(e Effect) {
	w.logf("            effect %T %+v", e, e)
	switch e := e.(type) {
	case CreateBox:
		if w.rng.IntN(30) == 0 {
			w.enqueue(Prepared{Err: errors.New("mkdir: no space")})
			return
		}
		w.dirExists = true
		w.enqueue(Prepared{})
		w.enqueue(SpecDurable{})
	case Persist:
		from := w.lastState
		if !slices.Contains(legalWrites[from], e.Rec.State) && e.Rec.State != from {
			w.failf("write of state %q after %q is not a legal transition", e.Rec.State, from)
		}
		w.lastState = e.Rec.State
		rec := e.Rec
		w.submitted = &rec
		w.writeQ = append(w.writeQ, e)
	case Spawn:
		w.spawn(e)
	case Watch:
		if p := w.procOfGenAny(e.Gen); p != nil {
			p.watched, p.readyWatch = true, true
			p.willReady = w.rng.IntN(7) != 0
			p.exitFirst = w.rng.IntN(3) == 0
		}
	case WatchExit:
		if p := w.procOfGenAny(e.Gen); p != nil {
			p.watched, p.readyWatch, p.readyDone = true, false, true
		}
	case SendSignal:
		if e.W != 0 {
			w.answer(e.W, e.Status)
			return
		}
		if p := w.procOfGen(e.Gen); p != nil && p.alive && p.asking {
			// A stop ends a shim that waits for an answer: its guest is gone.
			w.endAsking(p, "SIGTERM while asking")
			return
		}
		if p := w.procOfGen(e.Gen); p != nil && p.alive && w.rng.IntN(5) < 3 {
			w.kill(p, messages.ExitRecord{ExitCode: -1, Signal: "SIGTERM"}, "SIGTERM")
		}
	case KillTree:
		p := w.procOfGen(e.Gen)
		if w.rng.IntN(20) == 0 {
			w.enqueue(KillDone{Gen: e.Gen, Err: errors.New("cgroup.kill: EBUSY")})
			return
		}
		if p != nil && p.alive {
			w.kill(p, messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL"}, "KillTree")
		}
		w.enqueue(KillDone{Gen: e.Gen})
	case KillCgroup:
		if e.Cgroup == "" {
			w.failf("KillCgroup without a cgroup")
		} else if !strings.HasPrefix(e.Cgroup, "/cg/web") {
			w.failf("KillCgroup of %q, outside the box's cgroup", e.Cgroup)
		}
		for _, p := range w.procs {
			if p.alive {
				p.alive, p.killedBy = false, "KillCgroup"
			}
		}
		w.enqueue(ProcExited{Gen: e.Gen, Exit: messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL", Reason: "killed while unverified"}})
	case Verify:
		w.verify(e)
	case Load:
		w.enqueue(w.load())
	case Release:
		for _, p := range w.procs {
			if p.gen == e.Gen {
				p.watched = false
				w.dropLine(p, "line closed by Release")
			}
		}
	case AnswerGuest:
		w.answerGuest(e)
	case Arm:
		if old, ok := w.timers[e.Timer.Kind()]; ok && w.rng.IntN(3) == 0 {
			w.late = append(w.late, old)
		}
		w.timers[e.Timer.Kind()] = e.Timer
	case Disarm:
		if old, ok := w.timers[e.Timer.Kind()]; ok {
			delete(w.timers, e.Timer.Kind())
			if w.rng.IntN(3) == 0 {
				w.late = append(w.late, old) // cancelled, but already queued
			}
		}
	case Reply:
		w.answer(e.W, e.Status)
	case WriteSpec:
		if w.rng.IntN(10) == 0 {
			w.enqueue(SpecWritten{Err: syscall.ENOSPC})
			return
		}
		w.enqueue(SpecWritten{})
	case RemoveDir:
		if w.rng.IntN(15) == 0 {
			w.enqueue(Removed{Err: syscall.EBUSY})
			return
		}
		w.enqueue(Removed{})
	case End:
		if w.alive() > 0 {
			w.failf("the box ended with a shim still alive")
		}
		for _, r := range e.Replies {
			w.answer(r.W, r.Status)
		}
		w.gone = true
	case StartChecks:
		if w.opts.Health == nil {
			w.failf("health checks started for a box without one")
		}
		if w.checking != 0 {
			w.failf("health checks of generation %d started while those of %d run", e.Gen, w.checking)
		}
		if p := w.procOfGen(e.Gen); p == nil {
			w.failf("health checks started for generation %d, which has no process", e.Gen)
		}
		w.checking = e.Gen
	case StopChecks:
		if w.checking == 0 {
			w.failf("health checks stopped while none run")
		}
		w.checking = 0
	case Publish, Notify, Log:
	default:
		w.failf("unexpected effect %T", e)
	}
}

// procOfGenAny returns the newest process of generation gen: after an
// actor restart reloads an older record, generation numbers come round
// again, and the real actor's handles belong to its incarnation.
func (w *world) procOfGenAny(gen uint64) *mproc {
	for i := len(w.procs) - 1; i >= 0; i-- {
		if p := w.procs[i]; p.gen == gen {
			return p
		}
	}
	return nil
}

func (w *world) kill(p *mproc, exit messages.ExitRecord, by string) {
	p.alive = false
	p.exit = exit
	p.killedBy = by
	p.asking = false
}

// endAsking ends a shim that waited for an answer, with its guest's exit.
func (w *world) endAsking(p *mproc, by string) {
	w.kill(p, p.askedExit, by)
}

// dropLine closes a shim's restart line (its handle was let go of): it can
// never ask again, and a question it waits on is answered "end".
func (w *world) dropLine(p *mproc, by string) {
	p.inPlace = false
	if p.alive && p.asking {
		w.endAsking(p, by)
	}
}

// answerGuest carries out an AnswerGuest as the shim would: restart the
// guest in place, or end with its exit. Each question is answered once,
// and a restart only once the exit it reported is on disk.
func (w *world) answerGuest(e AnswerGuest) {
	p := w.procOfGenAny(e.Gen)
	if p == nil || !p.alive {
		return // the shim is gone: nobody reads the answer
	}
	if !p.asking {
		w.failf("generation %d's shim was answered (restart %v) without a question", e.Gen, e.Restart)
		return
	}
	if !e.Restart {
		w.endAsking(p, "answered end")
		return
	}
	if w.disk == nil || w.disk.LastExit == nil || w.disk.LastExit.Reason != p.askedExit.Reason {
		w.failf("guest of generation %d restarted in place before its exit %q was on disk (disk: %+v)", e.Gen, p.askedExit.Reason, w.disk)
	}
	p.asking = false
	w.nextPID++
	w.enqueue(GuestStarted{Gen: e.Gen, PID: w.nextPID})
}

// spawn behaves like the actor's spawn: a shim of the box still alive in
// its cgroup is adopted instead of starting a second one.
func (w *world) spawn(e Spawn) {
	if p := w.aliveProc(); p != nil {
		if w.env.noCgroup {
			// Without a cgroup the spawn cannot see an old shim: the model
			// then may not have one alive (checked by handle).
			w.failf("spawn of generation %d while pid %d is alive, without a cgroup to find it", e.Gen, p.pid)
			return
		}
		if w.rng.IntN(6) == 0 {
			w.enqueue(Spawned{Gen: e.Gen, Err: messages.Errorf(messages.ErrUnverified, "pid %d in the box cgroup: EMFILE", p.pid)})
			return
		}
		w.queue = append(w.queue, queued{inc: w.inc, before: func() {
			p.gen = e.Gen
			w.readyOK[e.Gen] = true
			w.healthyOK[e.Gen] = true
		}, ev: Spawned{Gen: e.Gen, Adopted: true, Proc: Proc{Identity: messages.Identity{PID: p.pid}, Cgroup: e.Cgroup}}})
		return
	}
	if w.rng.IntN(15) == 0 {
		w.enqueue(Spawned{Gen: e.Gen, Err: syscall.EAGAIN})
		return
	}
	mode := w.opts.Restart.WithDefaults().Mode
	if e.RestartInPlace && (w.opts.Health != nil || (mode != messages.RestartAlways && mode != messages.RestartOnFailure)) {
		w.failf("generation %d offered restarts in place with policy %s and health check %v", e.Gen, mode, w.opts.Health != nil)
	}
	w.nextPID++
	p := &mproc{pid: w.nextPID, gen: e.Gen, alive: true, inPlace: e.RestartInPlace}
	w.procs = append(w.procs, p)
	w.enqueue(Spawned{Gen: e.Gen, Proc: Proc{Identity: messages.Identity{PID: p.pid}, Cgroup: e.Cgroup}})
}

func (w *world) verify(e Verify) {
	flaky := w.rng.IntN(5) == 0
	if e.PID != 0 {
		p := w.aliveProc()
		switch {
		case flaky:
			w.enqueue(Adopted{Gen: e.Gen, Outcome: Unverified, Err: syscall.EMFILE})
		case p != nil && p.pid == e.PID:
			w.failf("a handed-over pid %d is the box's own shim, alive while the box is at rest", e.PID)
		case w.rng.IntN(2) == 0:
			w.enqueue(Adopted{Gen: e.Gen, Outcome: Mismatch, Err: errors.New("not a shim of this box")})
		default:
			// Another tool's shim: it becomes the box's only when the
			// verification is delivered to this incarnation.
			np := &mproc{pid: e.PID, gen: e.Gen, alive: true}
			w.queue = append(w.queue, queued{inc: w.inc, before: func() {
				w.procs = append(w.procs, np)
				w.readyOK[e.Gen] = true
				w.healthyOK[e.Gen] = true
			}, ev: Adopted{Gen: e.Gen, Outcome: Verified, Proc: Proc{Identity: messages.Identity{PID: np.pid}}}})
		}
		return
	}
	p := w.aliveProc()
	switch {
	case flaky:
		w.enqueue(Adopted{Gen: e.Gen, Outcome: Unverified, Err: syscall.EMFILE})
	case p != nil && (e.Identity.Zero() && !(w.env.noCgroup && e.Token == "") || e.Identity.PID == p.pid):
		// The process becomes generation e.Gen's when this incarnation
		// receives the verification (an actor restart drops it).
		w.queue = append(w.queue, queued{inc: w.inc, before: func() {
			p.gen = e.Gen
			w.readyOK[e.Gen] = true
			w.healthyOK[e.Gen] = true
		}, ev: Adopted{Gen: e.Gen, Outcome: Verified, Proc: Proc{Identity: messages.Identity{PID: p.pid}, Cgroup: e.Cgroup}}})
	case p != nil:
		w.failf("verification of pid %d cannot find the live shim pid %d", e.Identity.PID, p.pid)
	case !e.Identity.Zero() && w.rng.IntN(4) == 0:
		w.enqueue(Adopted{Gen: e.Gen, Outcome: Mismatch, Err: errors.New("start time differs")})
	default:
		w.enqueue(Adopted{Gen: e.Gen, Outcome: Vanished, Exit: messages.UnknownExit(w.env.now)})
	}
}

func (w *world) answer(wt Waiter, st messages.BoxStatus) {
	c := w.calls[wt]
	if c == nil {
		w.failf("reply to unknown caller %d", wt)
		return
	}
	c.answered++
	c.status = st
	if c.answered > 1 {
		w.failf("caller %d (%s) answered twice", wt, c.kind)
		return
	}
	err := messages.Err(st.Err)
	success := err == nil || errors.Is(err, messages.ErrPersist)
	switch c.kind {
	case KCreate, KStart:
		if success && !w.readyOK[st.Generation] {
			w.failf("start answered success for generation %d, which never signalled ready", st.Generation)
		}
		if success && w.opts.ReadyWhen == messages.ReadyWhenHealthy && !w.healthyOK[st.Generation] {
			w.failf("start answered success for generation %d, which never passed a health check", st.Generation)
		}
	case KStop, KKill:
		// A later generation may already run (a Start after the Stop);
		// the stopped one, or an older one, may not.
		if p := w.aliveProc(); success && st.State.AtRest() && p != nil && p.gen <= st.Generation {
			w.failf("stop answered %s for generation %d while its shim (generation %d) is alive", st.State, st.Generation, p.gen)
		}
	}
	if c.wantCode != "" && !errors.Is(err, c.wantCode) {
		w.failf("caller %d wanted %s, got %v", wt, c.wantCode, err)
	}
}

// step makes one random thing happen.
func (w *world) step() {
	switch n := w.rng.IntN(100); {
	case n < 40:
		w.deliverOne()
	case n < 50:
		w.fireTimer(w.rng.IntN(4) == 0)
	case n < 58:
		w.crash()
	case n < 88:
		w.randomRequest()
	case n < 92:
		if w.checking != 0 && w.rng.IntN(2) == 0 {
			w.healthResult()
			return
		}
		w.failNext += 1 + w.rng.IntN(2)
	case n < 96:
		w.actorRestart()
	default:
		w.deliverOne()
	}
}

// deliverOne delivers one result the world owes the machine, in an order
// the actor allows.
func (w *world) deliverOne() {
	var options []func()
	if len(w.writeQ) > 0 {
		options = append(options, w.ackWrite)
	}
	for i, q := range w.queue {
		options = append(options, func() {
			w.queue = slices.Delete(w.queue, i, i+1)
			if q.inc == w.inc {
				if q.before != nil {
					q.before()
				}
				w.handle(q.ev)
			}
		})
	}
	for _, p := range w.procs {
		if !p.watched {
			continue
		}
		if p.readyWatch && !p.readyDone && (p.willReady || !p.alive || w.rng.IntN(3) == 0) {
			options = append(options, func() { w.deliverReady(p) })
		}
		if !p.alive && !p.exitDone && (p.readyDone || p.exitFirst) {
			options = append(options, func() {
				p.exitDone = true
				w.handle(ProcExited{Gen: p.gen, Exit: p.exit})
			})
		}
	}
	if len(options) == 0 {
		return
	}
	options[w.rng.IntN(len(options))]()
}

func (w *world) deliverReady(p *mproc) {
	p.readyDone = true
	if p.willReady {
		w.readyOK[p.gen] = true
		w.handle(Ready{Gen: p.gen})
		return
	}
	// No ready byte: WaitReady kills the tree and reports, with the exit.
	var code messages.ErrorCode = messages.ErrStartFailed
	reason := "the box runner ended without signalling ready"
	if p.alive {
		code, reason = messages.ErrReadyTimeout, "no ready signal"
		w.kill(p, messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL"}, "ready timeout")
	}
	for wt, c := range w.calls {
		if (c.kind == KCreate || c.kind == KStart) && c.answered == 0 && slices.Contains(w.m.startW, wt) {
			c.wantCode = code
		}
	}
	exit := p.exit
	var ex *messages.ExitRecord
	if !p.exitDone && w.rng.IntN(4) != 0 {
		ex = &exit
		p.exitDone = true
	}
	w.handle(Ready{Gen: p.gen, Err: messages.Errorf(code, "%s", reason), Exit: ex})
}

// ackWrite acknowledges the oldest write, or (the writer coalesces) the
// newest; a write may fail, and is then retried until it lands.
func (w *world) ackWrite() {
	i := 0
	if w.rng.IntN(2) == 0 {
		i = len(w.writeQ) - 1
	}
	p := w.writeQ[i]
	if w.failNext > 0 {
		w.failNext--
		w.handle(Persisted{Seq: p.Seq, Err: syscall.ENOSPC})
		return
	}
	w.writeQ = w.writeQ[i+1:]
	rec := p.Rec
	w.disk = &rec
	w.handle(Persisted{Seq: p.Seq})
}

func (w *world) fireTimer(late bool) {
	if late && len(w.late) > 0 {
		i := w.rng.IntN(len(w.late))
		ev := w.late[i]
		w.late = slices.Delete(w.late, i, i+1)
		w.handle(ev)
		return
	}
	kinds := make([]Kind, 0, len(w.timers))
	for k := range w.timers {
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return
	}
	slices.Sort(kinds)
	k := kinds[w.rng.IntN(len(kinds))]
	ev := w.timers[k]
	delete(w.timers, k)
	w.handle(ev)
}

// healthResult delivers the result of one probe of the checked generation
// (now and then of an older one, which must change nothing).
func (w *world) healthResult() {
	gen := w.checking
	if gen > 1 && w.rng.IntN(8) == 0 {
		gen--
	}
	r := messages.HealthResult{Outcome: messages.HealthFail, Start: w.env.now, End: w.env.now, Reason: "connection refused"}
	if p := w.procOfGen(gen); p != nil && p.alive && w.rng.IntN(3) != 0 {
		r.Outcome, r.Reason = messages.HealthPass, ""
		if gen == w.checking {
			w.healthyOK[gen] = true
		}
	}
	w.handle(Health{Gen: gen, Result: r})
}

func (w *world) crash() {
	p := w.aliveProc()
	if p == nil {
		return
	}
	w.guestRuns++
	exit := messages.ExitRecord{ExitCode: w.rng.IntN(3), Reason: fmt.Sprintf("guest run %d", w.guestRuns)}
	if p.inPlace && p.watched && p.readyDone && !p.asking && w.rng.IntN(5) != 0 {
		// The guest ends; its shim lives on and asks.
		p.asking, p.askedExit = true, exit
		w.enqueue(GuestExited{Gen: p.gen, Exit: exit})
		return
	}
	w.kill(p, exit, "crash")
}

func (w *world) randomRequest() {
	switch w.rng.IntN(9) {
	case 8:
		st := time.Duration(w.rng.IntN(5)) * time.Second
		w.request(Update{W: w.newCall(KUpdate), Set: Settings{StopTimeout: &st, Labels: map[string]string{"n": "1"}}})
	case 0, 1:
		w.request(Start{W: w.newCall(KStart)})
	case 2:
		w.request(Stop{W: w.newCall(KStop), Timeout: time.Duration(w.rng.IntN(3)) * time.Second, Now: w.rng.IntN(8) == 0})
	case 3:
		w.request(Kill{W: w.newCall(KKill)})
	case 4:
		w.request(Remove{W: w.newCall(KRemove), Force: w.rng.IntN(2) == 0})
	case 5:
		w.request(Signal{W: w.newCall(KSignal), Sig: int(syscall.SIGHUP)})
	case 6:
		for wt := Waiter(1); wt <= w.nextW; wt++ {
			c := w.calls[wt]
			if (c.kind == KCreate || c.kind == KStart) && c.answered == 0 && c.inc == w.inc {
				w.request(CancelStart{W: wt})
				return
			}
		}
	case 7:
		w.nextPID++
		w.request(Adopt{W: w.newCall(KAdopt), PID: w.nextPID})
	}
}

// actorRestart replaces the machine, as a panicking actor is restarted: it
// reloads the newest record (the writer keeps what it has not written) and
// its waiting callers are told to retry; the processes live on.
func (w *world) actorRestart() {
	ph := w.m.Phase()
	if ph == Empty || ph == Creating || ph == Removing || ph == Gone || w.submitted == nil {
		return
	}
	w.logf("            --- actor restart ---")
	w.inc++
	for _, c := range w.calls {
		if c.answered == 0 && c.inc < w.inc {
			c.answered = 1 // the actor's release answers them ErrBusy
		}
	}
	w.queue = nil
	w.timers = map[Kind]Event{}
	w.late = nil
	w.checking = 0 // the actor's release ends the incarnation's health checks
	for _, p := range w.procs {
		p.watched = false
		// The old incarnation's handle, and with it the restart line, is
		// closed.
		w.dropLine(p, "line closed by an actor restart")
		if !p.alive {
			p.gen = 0 // its generation number means nothing to the new incarnation
		}
	}
	if w.failNext == 0 && len(w.writeQ) > 0 {
		w.disk = w.submitted
	}
	w.writeQ = nil
	w.m = New("web", "/home", false, w.env, w.hist)
	w.lastState = w.submitted.State
	w.handle(w.load())
}

// load reads the box's files as the actor does: now and then they cannot be
// read (EMFILE), which must decide nothing.
func (w *world) load() Loaded {
	if w.rng.IntN(4) == 0 {
		return Loaded{RecErr: fmt.Errorf("read state.json: %w", syscall.EMFILE)}
	}
	return Loaded{Opts: w.opts, Rec: *w.submitted}
}

// drain lets everything owed happen (no new requests, no failures) until
// the machine settles, then checks that every caller was answered.
func (w *world) drain() {
	w.failNext = 0
	for i := 0; i < 400 && !w.failed && !w.gone; i++ {
		switch {
		case len(w.writeQ) > 0 || len(w.queue) > 0 || w.deliverable():
			w.deliverOne()
		case len(w.timers) > 0:
			w.fireTimer(false)
		default:
			return
		}
	}
}

func (w *world) deliverable() bool {
	for _, p := range w.procs {
		if p.watched && ((p.readyWatch && !p.readyDone) || (!p.alive && !p.exitDone)) {
			return true
		}
	}
	return false
}

func (w *world) finalChecks() {
	if w.failed {
		return
	}
	for wt, c := range w.calls {
		if c.answered == 0 && c.inc == w.inc {
			w.failf("caller %d (%s) was never answered; machine in %s", wt, c.kind, w.m.Phase())
		}
	}
	for _, p := range w.procs {
		if p.alive && p.asking {
			w.failf("generation %d's shim still waits for an answer; machine in %s", p.gen, w.m.Phase())
		}
	}
	ph := w.m.Phase()
	if (ph.atRest() || ph == Gone) && w.checking != 0 {
		w.failf("the box is %s but its health checks still run", ph)
	}
	if (ph.atRest() || ph == Gone) && w.alive() > 0 {
		p := w.aliveProc()
		w.failf("the box is %s but a shim is alive (an orphan): pid %d of generation %d", ph, p.pid, p.gen)
	}
}
