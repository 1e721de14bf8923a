package lifecycle

import (
	"errors"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

var tcpCheck = &messages.HealthCheck{TCP: "127.0.0.1:8080", Retries: 2}

// probe is one health result of generation gen, at the driver's clock.
func (d *driver) probe(gen uint64, pass bool) []Effect {
	r := messages.HealthResult{Outcome: messages.HealthFail, Start: d.env.now, End: d.env.now, Reason: "connection refused"}
	if pass {
		r.Outcome, r.Reason = messages.HealthPass, ""
	}
	return d.feed(Health{Gen: gen, Result: r})
}

// readyBox drives a fresh box with opts to its ready byte (generation 1,
// pid 100) and returns the start's caller.
func readyBox(t *testing.T, opts Options) (*driver, Waiter) {
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: opts}, Prepared{}, SpecDurable{})
	d.ackAll()
	d.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 100, StartTime: 5, BootID: "b"}, Cgroup: "/cg/web/gen-1"}})
	d.ackAll()
	d.env.now = d.env.now.Add(100 * time.Millisecond)
	d.feed(Ready{Gen: 1})
	d.ackAll()
	return d, w
}

// TestReadyWhenHealthyWaitsForTheFirstPass: the ready byte starts the
// checks and the rest of the ready timeout; failures change nothing until
// retries are spent; the first pass answers the start, running and healthy,
// with BoxReady before BoxHealthy{First}.
func TestReadyWhenHealthyWaitsForTheFirstPass(t *testing.T) {
	t.Parallel()
	d, w := readyBox(t, Options{Health: tcpCheck, ReadyWhen: messages.ReadyWhenHealthy, ReadyTimeout: time.Second})
	d.expectPhase(AwaitHealthy)
	if starts := find[StartChecks](d.out); len(starts) != 1 || starts[0].Gen != 1 {
		t.Fatalf("StartChecks = %+v", starts)
	}
	if arms := find[Arm](d.out); len(arms) == 0 || arms[len(arms)-1].Delay != 900*time.Millisecond {
		t.Fatalf("the health timer should get the rest of the ready timeout: %+v", arms)
	}
	if _, answered := d.replyTo(w); answered {
		t.Fatal("the start was answered before a passing check")
	}
	d.probe(1, false)
	d.expectPhase(AwaitHealthy)
	d.probe(1, true)
	d.ackAll()
	d.expectPhase(Running)
	st := d.mustReply(w)
	if st.Err != nil || st.State != messages.StateRunning || st.Health == nil || st.Health.State != messages.HealthHealthy || len(st.Health.Log) != 2 {
		t.Fatalf("start reply = %+v (health %+v)", st, st.Health)
	}
	want := []string{"BoxStarted", "BoxReady", "BoxHealthy"}
	if got := d.published(); !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

// TestReadyWhenHealthyFails: turning unhealthy first fails the start with
// ErrStartFailed; no pass within the ready timeout with ErrReadyTimeout.
// Either way the box is killed, failed, and its checks stopped.
func TestReadyWhenHealthyFails(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]func(d *driver){
		"unhealthy": func(d *driver) { d.probe(1, false); d.probe(1, false) },
		"timeout":   func(d *driver) { d.feed(HealthTimer{Gen: 1}) },
	} {
		d, w := readyBox(t, Options{Health: tcpCheck, ReadyWhen: messages.ReadyWhenHealthy})
		fail(d)
		d.expectPhase(Killing)
		want := messages.ErrStartFailed
		if name == "timeout" {
			want = messages.ErrReadyTimeout
		}
		if st := d.mustReply(w); !errors.Is(messages.Err(st.Err), want) {
			t.Fatalf("%s: start reply = %+v, want %s", name, st, want)
		}
		if len(find[StopChecks](d.out)) != 1 {
			t.Fatalf("%s: checks not stopped when the start failed", name)
		}
		d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL"}})
		d.expectPhase(Failed)
	}
}

// TestOnUnhealthyStopsAndRestarts: under on-unhealthy a running box that
// turns unhealthy is stopped like a Stop would, and started again even
// though its guest exited 0 on SIGTERM; under on-failure it is only
// reported.
func TestOnUnhealthyStopsAndRestarts(t *testing.T) {
	t.Parallel()
	d, _ := readyBox(t, Options{Health: tcpCheck, Restart: messages.RestartPolicy{Mode: messages.RestartOnUnhealthy, MaxRestarts: 3}})
	d.expectPhase(Running)
	d.probe(1, true)
	d.probe(1, false)
	d.expectPhase(Running)
	d.probe(1, false)
	d.expectPhase(Stopping)
	if sig := find[SendSignal](d.last); len(sig) != 1 || sig[0].Sig != sigterm {
		t.Fatalf("unhealthy stop sent %+v, want SIGTERM", sig)
	}
	d.ackAll()
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 0}})
	d.expectPhase(Restarting)
	d.ackAll()
	want := []string{"BoxStarted", "BoxReady", "BoxHealthy", "BoxUnhealthy", "BoxExited", "BoxRestarting"}
	if got := d.published(); !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}

	d, _ = readyBox(t, Options{Health: tcpCheck, Restart: messages.RestartPolicy{Mode: messages.RestartOnFailure}})
	d.probe(1, false)
	d.probe(1, false)
	d.expectPhase(Running)
	if st := d.m.Status(nil); st.Health == nil || st.Health.State != messages.HealthUnhealthy || st.Health.FailingStreak != 2 {
		t.Fatalf("status health = %+v", st.Health)
	}
}

// TestAStopJoiningAnUnhealthyStopEndsTheBox: a caller's Stop during an
// unhealthy stop makes the exit a requested one: no restart.
func TestAStopJoiningAnUnhealthyStopEndsTheBox(t *testing.T) {
	t.Parallel()
	d, _ := readyBox(t, Options{Health: tcpCheck, Restart: messages.RestartPolicy{Mode: messages.RestartOnUnhealthy}})
	d.probe(1, false)
	d.probe(1, false)
	d.expectPhase(Stopping)
	w := d.waiter()
	d.feed(Stop{W: w})
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 0}})
	d.expectPhase(Exited)
	d.ackAll()
	if st := d.mustReply(w); st.Err != nil || st.State != messages.StateExited {
		t.Fatalf("stop reply = %+v", st)
	}
}

// TestStaleHealthResultsChangeNothing: results of another generation, or
// for a box not probed, are ignored.
func TestStaleHealthResultsChangeNothing(t *testing.T) {
	t.Parallel()
	d, _ := readyBox(t, Options{Health: tcpCheck, Restart: messages.RestartPolicy{Mode: messages.RestartOnUnhealthy}})
	for range 5 {
		d.probe(7, false)
	}
	d.expectPhase(Running)
	if st := d.m.Status(nil); st.Health.State != messages.HealthStarting || len(st.Health.Log) != 0 {
		t.Fatalf("a stale result was observed: %+v", st.Health)
	}
}

// TestOnUnhealthyNeedsACheck: an Update to on-unhealthy of a box without a
// check is refused; nothing is written.
func TestOnUnhealthyNeedsACheck(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	w := d.waiter()
	d.feed(Update{W: w, Set: Settings{Restart: &messages.RestartPolicy{Mode: messages.RestartOnUnhealthy}}})
	if st := d.mustReply(w); !errors.Is(messages.Err(st.Err), messages.ErrBadSpec) {
		t.Fatalf("update reply = %+v", st)
	}
	if len(find[WriteSpec](d.last)) != 0 {
		t.Fatal("a refused update wrote spec.json")
	}
}
