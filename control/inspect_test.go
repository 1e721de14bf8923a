package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// TestInspectThroughTheSocket: inspect reports the status, the record
// (the shim's identity), the spec with its secret redacted (the value never
// crosses the socket), the paths; an unknown box is ErrNotFound; a damaged
// spec.json is reported in the result, and the box runs on.
func TestInspectThroughTheSocket(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	sentinel := "sentinel-" + hex.EncodeToString(b[:])
	req := startReq("web", "exec sleep 60")
	req.Spec.Secrets = []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret(sentinel)}}
	req.Labels = map[string]string{"app": "web"}
	st, err := c.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}

	in, err := c.Inspect(ctx, "web")
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	raw, _ := json.Marshal(in)
	if strings.Contains(string(raw), sentinel) {
		t.Fatalf("inspect shows the secret value:\n%s", raw)
	}
	switch {
	case in.Status.State != messages.StateRunning || in.Status.PID != st.PID || in.Status.Labels["app"] != "web":
		t.Errorf("status: %+v", in.Status)
	case in.Record == nil || in.Record.Identity.PID != st.PID || in.Record.Identity.StartTime == 0:
		t.Errorf("record: %+v (error %v)", in.Record, in.RecordError)
	case in.Spec == nil || len(in.Spec.Spec.Secrets) != 1 || in.Spec.Spec.Secrets[0].Value.Reveal() != messages.Redacted ||
		in.Spec.Spec.GuestEntrypoint.Executable != "/bin/sh":
		t.Errorf("spec: %+v (error %v)", in.Spec, in.SpecError)
	case !strings.HasSuffix(in.Paths.ConsoleLog, "/boxes/web/console.log") || in.Paths.Home != sup.Home():
		t.Errorf("paths: %+v", in.Paths)
	}

	if _, err := c.Inspect(ctx, "nobody"); !errors.Is(err, messages.ErrNotFound) || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("Inspect of an unknown box: %v, want ErrNotFound naming it", err)
	}

	h, _ := layout.Open(sup.Home())
	box, _ := h.Box("web")
	if err := os.WriteFile(box.SpecPath(), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged, err := c.Inspect(ctx, "web")
	if err != nil {
		t.Fatalf("Inspect with a damaged spec.json: %v", err)
	}
	if damaged.Spec != nil || damaged.SpecError == nil || !errors.Is(damaged.SpecError, messages.ErrCorruptFile) {
		t.Fatalf("a damaged spec.json: spec %+v, error %v; want ErrCorruptFile in the result", damaged.Spec, damaged.SpecError)
	}
	if now, err := c.Status(ctx, "web"); err != nil || now.PID != st.PID || now.State != messages.StateRunning {
		t.Fatalf("the box after inspecting its damaged spec: %+v, %v", now, err)
	}
}

// TestEventsReplayAndUntil: through the socket, an event stream with Since
// replays the history (a marker first when Since reaches before it) and
// goes on live with the next sequence number; an Until already past sends
// the history up to it and ends.
func TestEventsReplayAndUntil(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.EventHistory = 100
	sup, err := actors.NewSupervisor(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, sup) })
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Minute)
	if _, err := c.Start(ctx, startReq("early", "exec sleep 60")); err != nil {
		t.Fatal(err)
	}

	var past []messages.Event
	if err := c.Events(ctx, Selection{Since: before, Until: time.Now()}, func(ev messages.Event) { past = append(past, ev) }); err != nil {
		t.Fatalf("Events with an Until already past: %v", err)
	}
	if len(past) < 3 {
		t.Fatalf("past events: %v, want a marker, then early's start and ready", past)
	}
	if _, ok := past[0].(messages.EventsLagged); !ok {
		t.Fatalf("first past event %#v, want the marker of a Since before the supervisor started", past[0])
	}
	lastPast := past[len(past)-1].Header().Seq

	streamCtx, stop := context.WithCancel(ctx)
	var mu sync.Mutex
	var live []messages.Event
	done := make(chan error, 1)
	go func() {
		done <- c.Events(streamCtx, Selection{Since: before, Kinds: []string{"BoxReady"}}, func(ev messages.Event) {
			mu.Lock()
			live = append(live, ev)
			mu.Unlock()
		})
	}()
	if _, err := c.Start(ctx, startReq("late", "exec sleep 60")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "late's BoxReady to be streamed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(live) > 0 && live[len(live)-1].Box() == "late"
	})
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Events after its context ended: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var boxes []string
	for _, ev := range live[1:] {
		boxes = append(boxes, ev.Box())
	}
	if strings.Join(boxes, ",") != "early,late" {
		t.Fatalf("BoxReady events replayed then live: %v, want early (replayed) then late", boxes)
	}
	if live[2].Header().Seq <= lastPast {
		t.Fatalf("late's seq %d does not follow the history's %d", live[2].Header().Seq, lastPast)
	}
}

// TestConnectRequireServer: with RequireServer, Connect opens no Local: no
// server, or only a foreground command's temporary one, is ErrNoServer; a
// supervise-like server is used.
func TestConnectRequireServer(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ctx := ctxFor(t)
	if _, err := Connect(ctx, cfg.Home, ConnectOptions{Config: cfg, RequireServer: true}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("Connect without a server: %v, want ErrNoServer", err)
	}
	temp, err := Connect(ctx, cfg.Home, ConnectOptions{Config: cfg, Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(ctx, cfg.Home, ConnectOptions{Config: cfg, RequireServer: true}); !errors.Is(err, ErrNoServer) ||
		!strings.Contains(err.Error(), "foreground command") {
		t.Fatalf("Connect with a temporary server: %v, want ErrNoServer naming it", err)
	}
	if err := temp.Close(); err != nil {
		t.Fatal(err)
	}
	sup, err := actors.NewSupervisor(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, sup) })
	h, _ := layout.Open(sup.Home())
	sock, _ := h.ControlSocketPath()
	serveAt(t, sup, sock)
	b, err := Connect(ctx, cfg.Home, ConnectOptions{Config: cfg, RequireServer: true})
	if err != nil {
		t.Fatalf("Connect with a server: %v", err)
	}
	defer b.Close()
	if !Remote(b) {
		t.Fatalf("Connect with a server gave %T", unwrap(b))
	}
}
