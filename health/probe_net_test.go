package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// noBox is the target of a probe of a box without secrets or namespaces.
var noBox = Target{Spec: &messages.InstanceSpec{}}

func TestTCPProbe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	r := Probe(context.Background(), &messages.HealthCheck{TCP: ln.Addr().String(), Timeout: 5 * time.Second}, noBox)
	if r.Outcome != messages.HealthPass || r.Reason != "" || r.End.Before(r.Start) {
		t.Fatalf("tcp probe of a listener: %+v", r)
	}

	closed := freeAddr(t)
	r = Probe(context.Background(), &messages.HealthCheck{TCP: closed, Timeout: 5 * time.Second}, noBox)
	if r.Outcome != messages.HealthFail || !strings.Contains(r.Reason, "refused") {
		t.Fatalf("tcp probe of a closed port: %+v, want a failure saying refused", r)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestUnixProbe(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if r := Probe(context.Background(), &messages.HealthCheck{Unix: path}, noBox); r.Outcome != messages.HealthPass {
		t.Fatalf("unix probe of a listener: %+v", r)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	r := Probe(context.Background(), &messages.HealthCheck{Unix: missing}, noBox)
	if r.Outcome != messages.HealthFail || !strings.Contains(r.Reason, "no such file") {
		t.Fatalf("unix probe of a missing socket: %+v", r)
	}
}

func TestHTTPProbeStatuses(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprint(w, "all good") })
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, "database unreachable")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/down", http.StatusFound) })
	var loops atomic.Int32
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		loops.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	var elsewhereHit atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhereHit.Store(true)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer elsewhere.Close()
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, elsewhere.URL+"/", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tls := httptest.NewTLSServer(mux)
	defer tls.Close()

	cases := []struct {
		url    string
		status *messages.HTTPStatusRange
		want   messages.HealthOutcome
		reason string
		output string
	}{
		{srv.URL + "/ok", nil, messages.HealthPass, "", "all good"},
		{srv.URL + "/down", nil, messages.HealthFail, "HTTP 503 Service Unavailable (want 200–399)", "database unreachable"},
		{srv.URL + "/nocontent", &messages.HTTPStatusRange{Min: 204, Max: 204}, messages.HealthPass, "", ""},
		{srv.URL + "/ok", &messages.HTTPStatusRange{Min: 204, Max: 204}, messages.HealthFail, "HTTP 200 OK (want 204–204)", "all good"},
		{srv.URL + "/missing", nil, messages.HealthFail, "HTTP 404 Not Found", ""},
		// A redirect to the same host is followed: the target's answer counts.
		{srv.URL + "/moved", nil, messages.HealthFail, "HTTP 503", "database unreachable"},
		// Past maxRedirects, the last redirect is the answer (a 3xx: healthy).
		{srv.URL + "/loop", nil, messages.HealthPass, "", ""},
		// A redirect to another host is not followed.
		{srv.URL + "/away", nil, messages.HealthPass, "", ""},
		// HTTPS with a certificate of the box's own.
		{tls.URL + "/ok", nil, messages.HealthPass, "", "all good"},
	}
	for _, c := range cases {
		r := Probe(context.Background(), &messages.HealthCheck{HTTP: c.url, HTTPStatus: c.status, Timeout: 5 * time.Second}, noBox)
		if r.Outcome != c.want || !strings.Contains(r.Reason, c.reason) || !strings.Contains(r.Output, c.output) {
			t.Errorf("GET %s: %+v, want %s with reason %q and output %q", c.url, r, c.want, c.reason, c.output)
		}
	}
	if n := loops.Load(); n != maxRedirects+1 {
		t.Errorf("/loop was requested %d times, want %d (the first request and %d redirects)", n, maxRedirects+1, maxRedirects)
	}
	if elsewhereHit.Load() {
		t.Error("a redirect to another host was followed")
	}
}

func TestHTTPProbeTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r := Probe(context.Background(), &messages.HealthCheck{HTTP: srv.URL, Timeout: 200 * time.Millisecond}, noBox)
	if r.Outcome != messages.HealthFail || r.Reason != "timed out after 200ms" {
		t.Fatalf("a hung server: %+v, want a failure: timed out after 200ms", r)
	}
}

func TestHTTPProbeBoundsAndScrubsTheBody(t *testing.T) {
	t.Parallel()
	secret := "tok-0123456789abcdef"
	spec := &messages.InstanceSpec{Secrets: []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret(secret)}}}
	// The secret straddles the bound: its head lies within the first
	// MaxHealthOutput bytes, its tail beyond.
	straddle := strings.Repeat("x", messages.MaxHealthOutput-6) + secret + strings.Repeat("y", 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/straddle" {
			_, _ = fmt.Fprint(w, straddle)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintf(w, "token %s rejected", secret)
	}))
	defer srv.Close()
	target := Target{Spec: spec}

	r := Probe(context.Background(), &messages.HealthCheck{HTTP: srv.URL + "/straddle"}, target)
	if r.Outcome != messages.HealthPass || len(r.Output) > messages.MaxHealthOutput {
		t.Fatalf("a 1 MiB body: outcome %s, %d bytes of output, want a pass with at most %d", r.Outcome, len(r.Output), messages.MaxHealthOutput)
	}
	if leak := secret[:4]; strings.Contains(r.Output, leak) {
		t.Fatalf("the output keeps the head of a secret cut at the bound: ...%q", r.Output[len(r.Output)-20:])
	}
	r = Probe(context.Background(), &messages.HealthCheck{HTTP: srv.URL + "/echo"}, target)
	if r.Outcome != messages.HealthFail || strings.Contains(r.Output, secret) || !strings.Contains(r.Output, "token [REDACTED] rejected") {
		t.Fatalf("a body quoting the secret: %+v", r)
	}
}

func TestProbeCancelledIsNoVerdict(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan messages.HealthResult, 1)
	go func() { done <- Probe(ctx, &messages.HealthCheck{HTTP: srv.URL, Timeout: time.Minute}, noBox) }()
	cancel()
	if r := <-done; r.Outcome != messages.HealthError || r.Reason != "cancelled" {
		t.Fatalf("a cancelled probe: %+v, want an error (no verdict)", r)
	}
}

func TestJudgedTellsShortagesFromFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		want messages.HealthOutcome
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, messages.HealthFail},
		{&net.OpError{Op: "dial", Err: syscall.EMFILE}, messages.HealthError},
		{fmt.Errorf("socket: %w", syscall.ENFILE), messages.HealthError},
		{fmt.Errorf("x: %w", syscall.ENOBUFS), messages.HealthError},
		{errors.New("tls: handshake failure"), messages.HealthFail},
	} {
		if got := judged(ctx, c.err); got.outcome != c.want {
			t.Errorf("judged(%v) = %s, want %s", c.err, got.outcome, c.want)
		}
	}
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if got := judged(expired, errors.New("i/o timeout")); got.outcome != messages.HealthFail || !got.timedOut {
		t.Errorf("judged after the deadline = %+v, want a timed-out failure", got)
	}
}

func TestSupported(t *testing.T) {
	t.Parallel()
	plain := &messages.InstanceSpec{Engine: messages.EngineProcess}
	offline := &messages.InstanceSpec{Engine: messages.EngineProcess, DisableNetwork: true}
	filtered := &messages.InstanceSpec{Engine: messages.EngineProcess, Security: messages.SecurityOptions{Seccomp: true}}
	vm := &messages.InstanceSpec{Engine: messages.EngineLibkrun}
	exec := &messages.HealthCheck{Exec: []string{"true"}}
	for _, c := range []struct {
		check *messages.HealthCheck
		spec  *messages.InstanceSpec
		want  error // nil, ErrUnsupported or ErrBadSpec
	}{
		{exec, plain, nil},
		{exec, offline, nil},
		{exec, vm, messages.ErrUnsupported},
		{exec, filtered, messages.ErrUnsupported},
		{&messages.HealthCheck{TCP: "10.0.0.1:80"}, plain, nil},
		{&messages.HealthCheck{TCP: "10.0.0.1:80"}, vm, nil},
		{&messages.HealthCheck{TCP: "127.0.0.1:80"}, offline, nil},
		{&messages.HealthCheck{TCP: "[::1]:80"}, offline, nil},
		{&messages.HealthCheck{TCP: "localhost:80"}, offline, nil},
		{&messages.HealthCheck{TCP: "10.0.0.1:80"}, offline, messages.ErrBadSpec},
		{&messages.HealthCheck{TCP: "db.internal:80"}, offline, messages.ErrBadSpec},
		{&messages.HealthCheck{HTTP: "http://127.0.0.2:8080/"}, offline, nil},
		{&messages.HealthCheck{HTTP: "http://example.com/"}, offline, messages.ErrBadSpec},
		{&messages.HealthCheck{Unix: "/run/x.sock"}, offline, nil},
		{&messages.HealthCheck{}, plain, messages.ErrBadSpec},
	} {
		err := Supported(c.check, c.spec)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("Supported(%+v, engine %s, offline %v) = %v, want %v", *c.check, c.spec.Engine, c.spec.DisableNetwork, err, c.want)
		}
		if errors.Is(err, messages.ErrUnsupported) && !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("ErrUnsupported does not match ErrBadSpec: %v", err)
		}
	}
}
