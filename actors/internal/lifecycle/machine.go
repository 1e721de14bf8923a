package lifecycle

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Env is what a Machine needs from the world besides events: a clock,
// randomness and the box's cgroup paths. It must not block.
type Env interface {
	// Now is the current time.
	Now() time.Time
	// Jitter returns a uniform random number in [0, n].
	Jitter(n int64) int64
	// NewToken returns a fresh random spawn token.
	NewToken() string
	// BoxCgroup is the directory that holds every generation's cgroup of
	// this box, "" when boxes get no cgroup. Only cgroups under it are
	// ever killed without a verified process.
	BoxCgroup() string
	// GenCgroup is generation gen's own cgroup ("" when none): a new
	// generation never shares a cgroup with an old one, so an old
	// teardown cannot kill a new shim.
	GenCgroup(gen uint64) string
}

// killCause says why the tree of a Killing box was SIGKILLed.
type killCause uint8

const (
	causeRequested   killCause = iota // a Kill, or a shutdown with no time left
	causeTimeout                      // a Stop's timeout expired
	causeCancel                       // the start's context ended before ready
	causeStartFailed                  // the ready handshake failed; WaitReady's kill did not end it
)

// adoptKind says why an Adopting box verifies a process.
type adoptKind uint8

const (
	adoptBoot   adoptKind = iota // the record of a loaded box
	adoptRetry                   // an unknown box, again
	adoptHanded                  // an Adopt request's PID
)

// pendingCommit is work that waits until state.json holds record seq: the
// replies and events that announce a transition.
type pendingCommit struct {
	seq      uint64
	announce func(durable bool, err error)
}

// Machine is one box's lifecycle. It is not safe for concurrent use: the box
// actor owns it and feeds it from its Receive.
type Machine struct {
	id   string
	home string
	env  Env
	hist *History

	phase Phase
	rec   messages.StateRecord // the in-memory truth; state.json catches up
	opts  Options
	fresh bool // this incarnation created the box: a cancelled start removes it

	proc         *Proc                // the current generation's process; nil when none
	spawnedAt    time.Time            // when the current process started
	pendingExit  *messages.ExitRecord // AwaitReady: the exit came before the ready result
	killCause    killCause            // Killing
	stopCause    stopCause            // Stopping, Killing: who wants the box stopped
	healthSince  time.Time            // when the current generation signalled ready (zero: adopted)
	checks       checks               // the generation whose health is probed
	failErr      *messages.Error      // Killing after a failed start: the error to record
	stopDeadline time.Time            // Stopping: when the kill timer fires
	retries      int                  // Unknown: consecutive unverified outcomes
	shortages    int                  // Restarting: consecutive restarts that failed for want of a host resource
	removalLeft  string               // a removal hid the directory and left files (why): no start until removed
	reload       bool                 // Unknown: the files could not be read; read them again
	adopting     adoptKind            // Adopting
	handedW      Waiter               // Adopting a handed-over process: its caller
	prevPhase    Phase                // where a refused Adopt or a failed removal returns
	loadNote     string               // what was wrong with the files at load (BoxStatus.Damage)
	initial      bool                 // the first status after a load is still owed to the root
	notified     statusKey            // what the root last heard
	settings     uint64               // counts the Updates applied: List shows their labels and policy
	guestExitAt  time.Time            // Running: when the guest restarted in place last ended
	// granted is a restart in place the policy granted that did not happen
	// (its record did not land): the shim ends, and its exit is judged with
	// this decision rather than a second one.
	granted *decision

	startW, stopW, removeW []Waiter
	cancelled              []Waiter // starts whose context ended, answered once undone

	updates  []Update // Updates in order; the first one's spec.json write is in flight
	deferred []Event  // requests that came during a transient phase
	parked   []Event  // removals to replay once the box is at rest (or already being removed)

	seq, acked, intentSeq uint64
	pending               []pendingCommit
	specDurable           bool
	heldAcks              []Persisted // acks that wait for spec.json to be durable

	out []Effect
}

// New returns the machine of box id of the supervisor on home. A fresh box
// (one a Create is about to make) starts in phase Empty; an existing box in
// Loading, waiting for its Loaded event. hist outlives the machine.
func New(id, home string, fresh bool, env Env, hist *History) *Machine {
	m := &Machine{id: id, home: home, env: env, hist: hist, phase: Loading, specDurable: true}
	if fresh {
		m.phase = Empty
	}
	m.rec.ID = id
	return m
}

// Phase returns the current phase.
func (m *Machine) Phase() Phase { return m.phase }

// StartSettled reports whether no start is in flight and every record
// committed so far has been announced, so that a start's caller has had
// its answer (it comes once the record is on disk).
func (m *Machine) StartSettled() bool { return !m.phase.StartInFlight() && len(m.pending) == 0 }

// Record returns the in-memory state record.
func (m *Machine) Record() messages.StateRecord { return m.rec }

// Options returns the box's supervision settings.
func (m *Machine) Options() Options { return m.opts }

// Handle feeds one event to the machine and returns what the actor must do,
// in order. The error is an *IllegalTransitionError when a handler tried a
// move its table row does not allow (a bug: the move is refused and the
// machine stays where it was).
func (m *Machine) Handle(ev Event) ([]Effect, error) {
	m.out = nil
	err := m.dispatch(ev)
	for {
		// A parked removal came before anything still deferred: it goes
		// first once the box is at rest.
		switch {
		case (m.phase.atRest() || m.phase == Removing) && len(m.parked) > 0:
			next := m.parked[0]
			m.parked = m.parked[1:]
			if e := m.dispatch(next); err == nil {
				err = e
			}
			continue
		case !m.phase.transient() && len(m.deferred) > 0:
			next := m.deferred[0]
			m.deferred = m.deferred[1:]
			if e := m.dispatch(next); err == nil {
				err = e
			}
			continue
		}
		break
	}
	m.syncChecks()
	m.notifyIfChanged()
	out := m.out
	m.out = nil
	return out, err
}

// dispatch runs the table row for (phase, kind) and checks the move.
func (m *Machine) dispatch(ev Event) error {
	r := lookup(m.phase, ev.Kind())
	from := m.phase
	to := r.do(m, ev)
	if to != from && !slices.Contains(r.to, to) {
		return &IllegalTransitionError{From: from, Kind: ev.Kind(), To: to}
	}
	m.phase = to
	return nil
}

// IllegalTransitionError reports a move that the lifecycle table does not
// allow.
type IllegalTransitionError struct {
	From Phase
	Kind Kind
	To   Phase
}

func (e *IllegalTransitionError) Error() string {
	return fmt.Sprintf("lifecycle: %s on %s may not lead to %s", e.Kind, e.From, e.To)
}

// emit queues effects.
func (m *Machine) emit(effs ...Effect) { m.out = append(m.out, effs...) }

// logf queues a log line.
func (m *Machine) logf(level string, err error, format string, args ...any) {
	m.emit(Log{Level: level, Msg: fmt.Sprintf(format, args...), Err: err})
}

// commit queues the current record for state.json as a new record number;
// announce runs once that write has been attempted: durable says whether it
// landed, err why not. It returns the record's number.
func (m *Machine) commit(announce func(durable bool, err error)) uint64 {
	m.rec.UpdatedAt = m.env.Now().UTC()
	m.rec.RecentRestarts, m.rec.BackoffStep = m.hist.snapshot(m.opts.Restart.WithDefaults().MaxRestarts)
	m.seq++
	m.emit(Persist{Seq: m.seq, Rec: m.rec})
	m.pending = append(m.pending, pendingCommit{seq: m.seq, announce: announce})
	return m.seq
}

// onPersisted notes how far state.json has got and runs the announcements
// of every record up to ev.Seq. The announcements also wait for a new box's
// spec.json to be durable, so that a caller never hears of a box whose spec
// a power loss could take; the spawn does not (the fsyncs overlap it).
func (m *Machine) onPersisted(ev Persisted) {
	if ev.Err == nil {
		m.acked = max(m.acked, ev.Seq)
	} else {
		m.logf("error", ev.Err, "writing state.json failed; the write is retried until it lands")
	}
	if !m.specDurable {
		m.heldAcks = append(m.heldAcks, ev)
		return
	}
	m.announceUpTo(ev)
}

// announceUpTo runs the announcements of the records up to ev.Seq.
func (m *Machine) announceUpTo(ev Persisted) {
	n := 0
	for _, p := range m.pending {
		if p.seq > ev.Seq {
			break
		}
		if p.announce != nil {
			p.announce(ev.Err == nil, ev.Err)
		}
		n++
	}
	m.pending = m.pending[n:]
}

// afterCommits runs f once every pending record has been announced (now,
// when none is pending).
func (m *Machine) afterCommits(f func()) {
	if len(m.pending) == 0 {
		f()
		return
	}
	last := &m.pending[len(m.pending)-1]
	prev := last.announce
	last.announce = func(durable bool, err error) {
		if prev != nil {
			prev(durable, err)
		}
		f()
	}
}

// statusKey is what a root's List shows of a box: a change is worth a Notify.
type statusKey struct {
	state    messages.BoxState
	pid      int
	gen      uint64
	restarts int
	reason   string
	exit     *messages.ExitRecord
	killed   bool
	health   messages.HealthState
	settings uint64 // Machine.settings: an Update changes what List shows too
}

// notifyIfChanged tells the root the box's status when it changed and the
// change is on disk (or is not a disk state, as unknown), and the first
// status after a load as soon as the load has settled.
func (m *Machine) notifyIfChanged() {
	if m.phase == Gone || m.phase == Empty {
		return
	}
	if m.initial {
		if m.phase.transient() {
			return
		}
		m.initial = false
		st := m.Status(nil)
		m.notified = m.keyOf(st)
		m.notifyFirst(Notify{Status: st, Initial: true})
		return
	}
	if len(m.pending) > 0 || m.phase.transient() {
		return
	}
	st := m.Status(nil)
	if k := m.keyOf(st); k != m.notified {
		m.notified = k
		m.notifyFirst(Notify{Status: st})
	}
}

// notifyFirst puts n before the effects of this event: the root must know
// the new status before a caller who hears of it can ask the root (a Stop
// of every box right after a Start returned must find that box).
func (m *Machine) notifyFirst(n Notify) {
	m.out = append([]Effect{n}, m.out...)
}

func (m *Machine) keyOf(st messages.BoxStatus) statusKey {
	k := statusKey{st.State, st.PID, st.Generation, st.Restarts, st.Reason, st.LastExit, st.Killed, "", m.settings}
	if st.Health != nil {
		k.health = st.Health.State
	}
	return k
}

// Status describes the box now, with err attached for replies. The state is
// the in-memory record's (handlers set it before they answer), except while
// the process is unverified: unknown is never written to state.json.
func (m *Machine) Status(err *messages.Error) messages.BoxStatus {
	state := m.rec.State
	switch {
	case m.phase == Unknown || (m.phase == Adopting && m.adopting == adoptRetry):
		state = messages.StateUnknown
	case m.phase == Creating:
		state = messages.StateStarting // its Start is under way: not at rest
	}
	if state == "" {
		state = messages.StateCreated
	}
	st := messages.BoxStatus{
		ID:          m.id,
		State:       state,
		Engine:      m.opts.Engine,
		PID:         m.rec.Identity.PID,
		Generation:  m.rec.Generation,
		Restarts:    m.rec.Restarts,
		Detached:    m.opts.Detach,
		LastExit:    m.rec.LastExit,
		Reason:      m.rec.Reason,
		Killed:      m.rec.Killed,
		CreatedAt:   m.rec.CreatedAt,
		StartedAt:   m.rec.StartedAt,
		Labels:      m.rec.Labels,
		Restart:     m.opts.Restart,
		StopTimeout: m.opts.StopTimeout,
		Health:      m.health(),
		Err:         err,
	}
	if m.loadNote != "" {
		st.Damage = m.loadNote
		switch {
		case st.Reason == "":
			st.Reason = m.loadNote
		case !strings.Contains(st.Reason, m.loadNote):
			st.Reason += "; " + m.loadNote
		}
	}
	return st
}

// header fills an event header for the current generation, stamped now:
// the time of the transition, not of its publication, with the state the
// transition led to (handlers set it first).
func (m *Machine) header() messages.EventHeader {
	return messages.EventHeader{Home: m.home, BoxID: m.id, At: m.env.Now().UTC(), Generation: m.rec.Generation,
		State: m.Status(nil).State, Labels: m.rec.Labels}
}

// reply answers one caller.
func (m *Machine) reply(w Waiter, st messages.BoxStatus) {
	if w != 0 {
		m.emit(Reply{W: w, Status: st})
	}
}

// replyAll answers and forgets a list of callers.
func (m *Machine) replyAll(ws *[]Waiter, st messages.BoxStatus) {
	for _, w := range *ws {
		m.reply(w, st)
	}
	*ws = nil
}

// replyDurable answers a list of callers with st, or, when the transition
// did not reach state.json, with st and ErrPersist: nothing unwritten is
// acknowledged as done.
func (m *Machine) replyDurable(ws []Waiter, st messages.BoxStatus, durable bool, err error) {
	if !durable && st.Err == nil {
		st.Err = messages.Errorf(messages.ErrPersist, "box %q: %v (the supervisor keeps retrying the write)", m.id, err)
	}
	for _, w := range ws {
		m.reply(w, st)
	}
}

// takeWaiters returns a list and empties it.
func takeWaiters(ws *[]Waiter) []Waiter {
	out := *ws
	*ws = nil
	return out
}

// removeWaiter drops w from ws and reports whether it was there.
func removeWaiter(ws *[]Waiter, w Waiter) bool {
	i := slices.Index(*ws, w)
	if i < 0 {
		return false
	}
	*ws = slices.Delete(*ws, i, i+1)
	return true
}

// stopTimeout resolves a Stop's timeout: the request's, else the box's,
// else the default; capped by cap when positive.
func (m *Machine) stopTimeout(requested, cap time.Duration) time.Duration {
	t := messages.DefaultStopTimeout
	switch {
	case requested > 0:
		t = requested
	case m.opts.StopTimeout > 0:
		t = m.opts.StopTimeout
	}
	if cap > 0 && cap < t {
		t = cap
	}
	return t
}

// killableCgroup returns the cgroup to kill for a box whose process is not
// verified: the recorded generation cgroup when it lies under the box's own
// cgroup directory, else that directory (every generation of the box). The
// recorded path is never trusted alone: state.json is input.
func (m *Machine) killableCgroup() string {
	box := m.env.BoxCgroup()
	if box == "" {
		return ""
	}
	if c := m.rec.Cgroup; c != "" && filepath.Clean(c) == c && strings.HasPrefix(c, box+"/") {
		return c
	}
	return box
}

// lostExit is the exit of a process whose end nobody saw.
func (m *Machine) lostExit(why string) messages.ExitRecord {
	e := messages.UnknownExit(m.env.Now().UTC())
	e.Reason = "lost: " + why
	return e
}

// pid is the current process's pid, or 0.
func (m *Machine) pid() int {
	if m.proc == nil {
		return 0
	}
	return m.proc.Identity.PID
}

// release lets go of the current process after its exit.
func (m *Machine) release() {
	cg := m.rec.Cgroup
	if m.proc != nil && m.proc.Cgroup != "" {
		cg = m.proc.Cgroup
	}
	m.emit(Release{Gen: m.rec.Generation, Cgroup: cg})
	m.proc = nil
	m.pendingExit = nil
}
