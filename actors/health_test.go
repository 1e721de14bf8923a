package actors

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// events collects the events of one box, in order, on a channel.
func (ts *testSup) events(id string, kinds ...string) <-chan messages.Event {
	ch := make(chan messages.Event, 64)
	cancel := ts.sup.Subscribe(EventFilter{Boxes: []string{id}, Kinds: kinds}, func(ev messages.Event) { ch <- ev })
	ts.t.Cleanup(cancel)
	return ch
}

// next returns the next event from ch, failing the test after testTimeout.
func next(t *testing.T, ch <-chan messages.Event, what string) messages.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(testTimeout):
		t.Fatalf("no %s", what)
		return nil
	}
}

// TestHealthCheckLifecycle, with real shims and a real exec check run
// inside the box: Start waits for the first pass (ready_when healthy); a
// box that turns unhealthy is stopped and started again (on-unhealthy);
// the new generation is probed from scratch.
func TestHealthCheckLifecycle(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	dir := t.TempDir()
	count, sick := filepath.Join(dir, "count"), filepath.Join(dir, "sick")
	// Fails twice, then passes while the sick file is absent.
	script := fmt.Sprintf(`n=$(cat %[1]s 2>/dev/null || echo 0); echo $((n+1)) > %[1]s; [ "$n" -ge 2 ] && [ ! -e %[2]s ]`, count, sick)
	events := ts.events("probed", "BoxHealthy", "BoxUnhealthy", "BoxRestarting")
	st, err := ts.sup.Start(ts.ctx(), messages.StartBox{
		ID: "probed", Spec: spec("/bin/sleep", "300"),
		HealthCheck: &messages.HealthCheck{Exec: []string{"/bin/sh", "-c", script},
			Interval: 100 * time.Millisecond, Timeout: 5 * time.Second, Retries: 3},
		ReadyWhen: messages.ReadyWhenHealthy,
		Restart:   messages.RestartPolicy{Mode: messages.RestartOnUnhealthy, InitialBackoff: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != messages.StateRunning || st.Health == nil || st.Health.State != messages.HealthHealthy || len(st.Health.Log) != 3 {
		t.Fatalf("Start = %+v (health %+v); want running once the third probe passed", st, st.Health)
	}
	if ev := next(t, events, "BoxHealthy").(messages.BoxHealthy); !ev.First || ev.Generation != 1 {
		t.Fatalf("first event %+v", ev)
	}

	if err := os.WriteFile(sick, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ev, ok := next(t, events, "BoxUnhealthy").(messages.BoxUnhealthy); !ok || ev.FailingStreak != 3 || ev.Last.Outcome != messages.HealthFail {
		t.Fatalf("want BoxUnhealthy after 3 failures, got %+v", ev)
	}
	if ev, ok := next(t, events, "BoxRestarting").(messages.BoxRestarting); !ok || ev.Generation != 1 {
		t.Fatalf("want the unhealthy generation restarting, got %+v", ev)
	}
	if err := os.Remove(sick); err != nil {
		t.Fatal(err)
	}
	if ev, ok := next(t, events, "BoxHealthy").(messages.BoxHealthy); !ok || !ev.First || ev.Generation != 2 {
		t.Fatalf("want the new generation healthy, got %+v", ev)
	}
	now, err := ts.sup.Status(ts.ctx(), "probed")
	if err != nil || now.Restarts != 1 || now.LastExit == nil || now.Health == nil || now.Health.State != messages.HealthHealthy {
		t.Fatalf("Status after the restart = %+v (health %+v), %v", now, now.Health, err)
	}
	stopped, err := ts.sup.Stop(ts.ctx(), "probed", 0)
	if err != nil || stopped.Health != nil {
		t.Fatalf("Stop = %+v, %v; a stopped box has no health", stopped, err)
	}
}

// TestTCPCheckFollowsTheListener: a tcp check of a listener the test owns
// is healthy while it accepts and unhealthy once it is closed; under
// on-failure that is reported, and the box keeps running.
func TestTCPCheckFollowsTheListener(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	events := ts.events("served", "BoxHealthy", "BoxUnhealthy")
	_, err = ts.sup.Start(ts.ctx(), messages.StartBox{ID: "served", Spec: spec("/bin/sleep", "300"),
		HealthCheck: &messages.HealthCheck{TCP: ln.Addr().String(), Interval: 100 * time.Millisecond, Retries: 1},
		Restart:     messages.RestartPolicy{Mode: messages.RestartOnFailure}})
	if err != nil {
		t.Fatal(err)
	}
	next(t, events, "BoxHealthy")
	_ = ln.Close()
	if _, ok := next(t, events, "BoxUnhealthy").(messages.BoxUnhealthy); !ok {
		t.Fatal("want BoxUnhealthy once the listener closed")
	}
	st, err := ts.sup.Status(ts.ctx(), "served")
	if err != nil || st.State != messages.StateRunning || st.Health.State != messages.HealthUnhealthy || st.Generation != 1 {
		t.Fatalf("Status = %+v (health %+v), %v; want still running, unhealthy", st, st.Health, err)
	}
	got, err := ts.sup.List(ts.ctx(), ListOptions{})
	if err != nil || len(got) != 1 || got[0].Health == nil || got[0].Health.State != messages.HealthUnhealthy {
		t.Fatalf("List = %+v, %v; want the health state listed", got, err)
	}
}

// TestReadyWhenHealthyTimesOut: no passing check within the ready timeout
// fails the start with ErrReadyTimeout and leaves no process behind.
func TestReadyWhenHealthyTimesOut(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	_, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "never", Spec: spec("/bin/sleep", "300"),
		HealthCheck: &messages.HealthCheck{Exec: []string{"/bin/false"}, Interval: 100 * time.Millisecond, StartPeriod: time.Hour},
		ReadyWhen:   messages.ReadyWhenHealthy, ReadyTimeout: 500 * time.Millisecond})
	if !errors.Is(err, messages.ErrReadyTimeout) {
		t.Fatalf("Start = %v, want ErrReadyTimeout", err)
	}
	box, _ := ts.sup.core.home.Box("never")
	eventually(t, "the box to be failed with no shim left", func() bool {
		st, err := ts.sup.Status(ts.ctx(), "never")
		return err == nil && st.State == messages.StateFailed && len(shimsOfHome(ts.sup.Home())) == 0 && box.Exists()
	})
}

// TestHealthSettingsAreChecked: what a check needs is refused at Start, and
// an Update to on-unhealthy of a box without a check too.
func TestHealthSettingsAreChecked(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	secret := spec("/bin/sleep", "300")
	secret.Secrets = []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret("hunter2-very-secret")}}
	cases := map[string]messages.StartBox{
		"on-unhealthy without a check":       {Restart: messages.RestartPolicy{Mode: messages.RestartOnUnhealthy}},
		"ready_when healthy without a check": {ReadyWhen: messages.ReadyWhenHealthy},
		"a check naming a secret":            {Spec: secret, HealthCheck: &messages.HealthCheck{Exec: []string{"/bin/sh", "-c", "test hunter2-very-secret"}}},
		"two kinds":                          {HealthCheck: &messages.HealthCheck{TCP: "127.0.0.1:1", Unix: "/run/x.sock"}},
		"an unknown ready_when":              {ReadyWhen: "started"},
	}
	for name, req := range cases {
		req.ID = "refused"
		if req.Spec.GuestEntrypoint.Executable == "" {
			req.Spec = spec("/bin/sleep", "300")
		}
		_, err := ts.sup.Start(ts.ctx(), req)
		if !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%s: Start = %v, want ErrBadSpec", name, err)
		}
		if err != nil && errors.Is(err, messages.ErrBadSpec) && containsSecret(err.Error()) {
			t.Errorf("%s: the refusal names the secret: %v", name, err)
		}
	}
	if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "plain", Spec: spec("/bin/sleep", "300")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.sup.Update(ts.ctx(), messages.UpdateBox{ID: "plain", Restart: &messages.RestartPolicy{Mode: messages.RestartOnUnhealthy}}); !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("Update to on-unhealthy without a check = %v", err)
	}
}

func containsSecret(s string) bool { return strings.Contains(s, "hunter2") }
