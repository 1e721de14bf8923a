package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// fakeEnv is a deterministic Env: a clock that moves only when told, a
// seeded random source, counted tokens, cgroups under /cg/ID (or none).
type fakeEnv struct {
	now      time.Time
	rng      *rand.Rand
	tokens   int
	noCgroup bool
}

func newFakeEnv(seed uint64) *fakeEnv {
	return &fakeEnv{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), rng: rand.New(rand.NewPCG(seed, 7))}
}

func (e *fakeEnv) Now() time.Time { return e.now }
func (e *fakeEnv) Jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return e.rng.Int64N(n + 1)
}
func (e *fakeEnv) NewToken() string { e.tokens++; return fmt.Sprintf("token-%d", e.tokens) }
func (e *fakeEnv) BoxCgroup() string {
	if e.noCgroup {
		return ""
	}
	return "/cg/web"
}
func (e *fakeEnv) GenCgroup(gen uint64) string {
	if e.noCgroup {
		return ""
	}
	return fmt.Sprintf("/cg/web/gen-%d", gen)
}

// driver feeds one machine by hand and keeps what it answered.
type driver struct {
	t    *testing.T
	env  *fakeEnv
	m    *Machine
	out  []Effect // every effect so far
	last []Effect // the effects of the last event
	w    Waiter
}

func newDriver(t *testing.T, fresh bool) *driver {
	t.Helper()
	env := newFakeEnv(1)
	return &driver{t: t, env: env, m: New("web", "/home", fresh, env, &History{})}
}

// feed handles events and fails the test on an illegal move.
func (d *driver) feed(evs ...Event) []Effect {
	d.t.Helper()
	d.last = nil
	for _, ev := range evs {
		effs, err := d.m.Handle(ev)
		if err != nil {
			d.t.Fatalf("%T in %s: %v", ev, d.m.Phase(), err)
		}
		d.last = append(d.last, effs...)
		d.out = append(d.out, effs...)
	}
	return d.last
}

// waiter returns a fresh caller id.
func (d *driver) waiter() Waiter { d.w++; return d.w }

// expectPhase fails unless the machine is in p.
func (d *driver) expectPhase(p Phase) {
	d.t.Helper()
	if d.m.Phase() != p {
		d.t.Fatalf("phase = %s, want %s (last effects: %s)", d.m.Phase(), p, describe(d.last))
	}
}

// ackAll acknowledges every Persist among the last effects as written.
func (d *driver) ackAll() []Effect {
	d.t.Helper()
	var acks []Event
	for _, e := range d.last {
		if p, ok := e.(Persist); ok {
			acks = append(acks, Persisted{Seq: p.Seq})
		}
	}
	return d.feed(acks...)
}

// replyTo returns the reply to w among all effects so far.
func (d *driver) replyTo(w Waiter) (messages.BoxStatus, bool) {
	var got []Reply
	for _, e := range d.out {
		if r, ok := e.(Reply); ok && r.W == w {
			got = append(got, r)
		}
	}
	if len(got) > 1 {
		d.t.Fatalf("waiter %d answered %d times", w, len(got))
	}
	if len(got) == 0 {
		return messages.BoxStatus{}, false
	}
	return got[0].Status, true
}

// mustReply returns the reply to w, failing when there is none.
func (d *driver) mustReply(w Waiter) messages.BoxStatus {
	d.t.Helper()
	st, ok := d.replyTo(w)
	if !ok {
		d.t.Fatalf("waiter %d has no reply (effects: %s)", w, describe(d.out))
	}
	return st
}

// find returns the last effects of type T.
func find[T Effect](effs []Effect) []T {
	var out []T
	for _, e := range effs {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// published returns the kinds of the events published so far.
func (d *driver) published() []string {
	var out []string
	for _, p := range find[Publish](d.out) {
		out = append(out, p.Event.Kind())
	}
	return out
}

func describe(effs []Effect) string {
	var b strings.Builder
	for _, e := range effs {
		fmt.Fprintf(&b, "\n  %T %+v", e, e)
	}
	return b.String()
}

// runningBox drives a fresh box to Running with generation 1 (pid 100).
func runningBox(t *testing.T) (*driver, Waiter) {
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: Options{Engine: "process"}})
	d.feed(Prepared{}, SpecDurable{})
	d.expectPhase(Intent)
	d.ackAll()
	d.expectPhase(Spawning)
	d.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 100, StartTime: 5, BootID: "b"}, Cgroup: "/cg/web/gen-1"}})
	d.ackAll()
	d.expectPhase(AwaitReady)
	d.feed(Ready{Gen: 1})
	d.ackAll()
	d.expectPhase(Running)
	if st := d.mustReply(w); st.Err != nil || st.State != messages.StateRunning {
		t.Fatalf("start reply = %+v", st)
	}
	return d, w
}
