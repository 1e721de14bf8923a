package tests

import (
	"errors"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// rootRequest sends msg straight to the supervisor's root, as an embedder
// holding Root() would, and returns the reply; no reply within replyTimeout
// fails the test.
func rootRequest(t *testing.T, h *harness, msg any) any {
	t.Helper()
	v, err := h.sup.System().Root.RequestFuture(h.sup.Root(), msg, replyTimeout).Result()
	if err != nil {
		t.Fatalf("%T%+v sent to Root(): no reply (%v)", msg, msg, err)
	}
	return v
}

// rootStatus sends msg to the root and unpacks its BoxStatus reply.
func rootStatus(t *testing.T, h *harness, msg any) (messages.BoxStatus, error) {
	t.Helper()
	v := rootRequest(t, h, msg)
	st, ok := v.(messages.BoxStatus)
	if !ok {
		t.Fatalf("%T%+v sent to Root(): reply %T, want messages.BoxStatus", msg, msg, v)
	}
	return st, messages.Err(st.Err)
}

// TestEveryRequestToRootIsAnswered sends every exported request type of
// package messages straight to Root(), for a live box, a box at rest, a box
// that does not exist and with bad input: each gets a reply, with the typed
// error a facade call would return (issue: Adopt and a Kill carrying a
// generation got no reply, and a StartBox skipped the facade's checks).
func TestEveryRequestToRootIsAnswered(t *testing.T) {
	h := newHarness(t)
	live := h.startSleeper("live")
	h.startSleeper("rest")
	if _, err := h.sup.Stop(h.ctx(), "rest", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	good := messages.StartBox{ID: "fresh", Spec: h.sleepSpec()}
	bad := func(edit func(*messages.StartBox)) messages.StartBox {
		req := messages.StartBox{ID: "bad", Spec: h.sleepSpec()}
		edit(&req)
		return req
	}

	cases := []struct {
		msg  any
		want error // nil: success
	}{
		{&good, nil},
		{&messages.StartBox{ID: "live", Spec: h.sleepSpec()}, messages.ErrAlreadyExists},
		{&messages.Adopt{ID: "rest", PID: 0}, messages.ErrIdentityMismatch},
		{&messages.StartExisting{ID: "rest"}, nil},
		{&messages.StartExisting{ID: "live"}, nil},
		{&messages.StartExisting{ID: "ghost"}, messages.ErrNotFound},
		{&messages.StartExisting{ID: "../x"}, messages.ErrNotFound},
		{&messages.SignalBox{ID: "live", Signal: "WINCH"}, nil}, // ignored by sleep: the box stays live
		{&messages.SignalBox{ID: "live", Signal: "BOGUS"}, messages.ErrBadSpec},
		{&messages.SignalBox{ID: "ghost", Signal: "HUP"}, messages.ErrNotFound},
		{&messages.Adopt{ID: "live", PID: live.PID}, messages.ErrBusy},
		{&messages.Adopt{ID: "ghost", PID: live.PID}, messages.ErrNotFound},
		{&messages.Remove{ID: "live"}, messages.ErrBusy},
		{&messages.Remove{ID: "ghost", Force: true}, messages.ErrNotFound},
		{&messages.StatusRequest{ID: "live"}, nil},
		{&messages.StatusRequest{ID: "ghost"}, messages.ErrNotFound},
		{&messages.StatusRequest{ID: ""}, messages.ErrNotFound},
		{&messages.Stop{ID: "ghost"}, messages.ErrNotFound},
		{&messages.Stop{ID: "fresh", Timeout: 10 * time.Second}, nil},
		{&messages.Kill{ID: "ghost"}, messages.ErrNotFound},
		{&messages.Kill{ID: "live"}, nil},
		{&messages.Kill{ID: "live"}, nil}, // killing a box at rest answers at once
	}
	for _, c := range cases {
		st, err := rootStatus(t, h, c.msg)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%T%+v: %v, want success", c.msg, c.msg, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%T%+v: %v, want %v", c.msg, c.msg, err, c.want)
		case c.want == nil && st.ID == "":
			t.Errorf("%T%+v: a reply without the box's ID: %+v", c.msg, c.msg, st)
		}
	}
	if st := h.status("live"); st.State.Live() {
		t.Errorf("live after a Kill through Root(): %s, want it at rest", st.State)
	}
	for _, id := range []string{"rest", "fresh"} {
		h.procs.track(h.status(id).PID, "shim of "+id)
	}

	// A StartBox sent to the root is checked like Start: bad input is
	// refused with the facade's error and leaves no box directory.
	refused := map[string]struct {
		req  messages.StartBox
		want error
	}{
		"invalid ID":      {bad(func(r *messages.StartBox) { r.ID = "../escape" }), messages.ErrInvalidID},
		"empty ID":        {bad(func(r *messages.StartBox) { r.ID = "" }), messages.ErrInvalidID},
		"no executable":   {bad(func(r *messages.StartBox) { r.Spec.GuestEntrypoint.Executable = "" }), messages.ErrBadSpec},
		"box_id mismatch": {bad(func(r *messages.StartBox) { r.Spec.BoxID = "other" }), messages.ErrBadSpec},
		"bad policy":      {bad(func(r *messages.StartBox) { r.Restart.Mode = "sometimes" }), messages.ErrBadSpec},
		"negative stop":   {bad(func(r *messages.StartBox) { r.StopTimeout = -time.Second }), messages.ErrBadSpec},
		"unknown engine":  {bad(func(r *messages.StartBox) { r.Spec.Engine = "warp-drive" }), messages.ErrBadSpec},
	}
	for name, c := range refused {
		_, err := rootStatus(t, h, &c.req)
		if !errors.Is(err, c.want) {
			t.Errorf("StartBox with %s sent to Root(): %v, want %v", name, err, c.want)
		}
	}
	requireNoBoxDirs(t, h)

	// The requests whose replies are not a BoxStatus.
	if v, ok := rootRequest(t, h, &messages.ListRequest{}).(*messages.ListResponse); !ok || len(v.Boxes) != 3 {
		t.Errorf("ListRequest: %+v, want a ListResponse of 3 boxes", v)
	}
	if v, ok := rootRequest(t, h, &messages.MetricsRequest{ID: "rest"}).(*messages.MetricsResponse); !ok || v.Err != nil || v.Metrics.ID != "rest" {
		t.Errorf("MetricsRequest of a running box: %+v, want a sample", v)
	}
	for _, id := range []string{"ghost", "live", ""} {
		v, ok := rootRequest(t, h, &messages.MetricsRequest{ID: id}).(*messages.MetricsResponse)
		if !ok || v.Err == nil {
			t.Errorf("MetricsRequest of %q: %+v, want a MetricsResponse with an error", id, v)
		}
	}
	if v, ok := rootRequest(t, h, &messages.MetricsAllRequest{}).(*messages.MetricsAllResponse); !ok || len(v.Boxes) != 1 {
		t.Errorf("MetricsAllRequest: %+v, want a sample of the one running box", v)
	}

	// The same requests sent by value rather than by pointer are answered
	// alike: an embedder's slip must not leave it waiting for a reply.
	byValue := []struct {
		msg  any
		want error
	}{
		{messages.StartBox{ID: "../escape", Spec: h.sleepSpec()}, messages.ErrInvalidID},
		{messages.StartExisting{ID: "ghost"}, messages.ErrNotFound},
		{messages.Stop{ID: "ghost"}, messages.ErrNotFound},
		{messages.Kill{ID: "ghost"}, messages.ErrNotFound},
		{messages.SignalBox{ID: "rest", Signal: "BOGUS"}, messages.ErrBadSpec},
		{messages.Remove{ID: "rest"}, messages.ErrBusy},
		{messages.Adopt{ID: "ghost", PID: 2}, messages.ErrNotFound},
		{messages.StatusRequest{ID: "rest"}, nil},
	}
	for _, c := range byValue {
		if _, err := rootStatus(t, h, c.msg); (c.want == nil) != (err == nil) || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%T%+v by value: %v, want %v", c.msg, c.msg, err, c.want)
		}
	}
	if _, ok := rootRequest(t, h, messages.ListRequest{}).(*messages.ListResponse); !ok {
		t.Errorf("ListRequest by value: no ListResponse")
	}
	if v, ok := rootRequest(t, h, messages.MetricsRequest{ID: "rest"}).(*messages.MetricsResponse); !ok || v.Err != nil {
		t.Errorf("MetricsRequest by value: %+v", v)
	}
	if _, ok := rootRequest(t, h, messages.MetricsAllRequest{}).(*messages.MetricsAllResponse); !ok {
		t.Errorf("MetricsAllRequest by value: no MetricsAllResponse")
	}
	requireNoBoxDirs(t, h)
}
