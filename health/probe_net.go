package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// maxRedirects is how many redirects an HTTP check follows (to the same
// host and port only); the response that asks for one more is the answer.
const maxRedirects = 3

// maxResponseHeader bounds an HTTP check's response header.
const maxResponseHeader = 64 << 10

// userAgent names the prober to the box's server.
const userAgent = "boxsup-health/1"

// dialFunc opens a connection for a probe.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// hostDialer dials from the supervisor's own network namespace. Fast
// fallback is off: the check names one address.
var hostDialer = (&net.Dialer{FallbackDelay: -1}).DialContext

// dialerFor returns how to reach the box: from the supervisor's network
// namespace, or from inside the guest's when the box has its own
// (disable_network). The second needs the guest; finding it may fail,
// which is an error outcome, not a verdict.
func dialerFor(t Target) (dialFunc, func(), error) {
	if t.Spec == nil || !t.Spec.DisableNetwork {
		return hostDialer, func() {}, nil
	}
	g, err := findGuest(t.Shim, guestWants{net: true})
	if err != nil {
		return nil, nil, err
	}
	return g.dialInNetNS, g.close, nil
}

func probeTCP(ctx context.Context, c *messages.HealthCheck, t Target) outcome {
	dial, done, err := dialerFor(t)
	if err != nil {
		return errored(err)
	}
	defer done()
	conn, err := dial(ctx, "tcp", c.TCP)
	if err != nil {
		return judged(ctx, err)
	}
	_ = conn.Close()
	return passed(nil)
}

func probeUnix(ctx context.Context, c *messages.HealthCheck) outcome {
	conn, err := hostDialer(ctx, "unix", c.Unix)
	if err != nil {
		return judged(ctx, err)
	}
	_ = conn.Close()
	return passed(nil)
}

// probeHTTP GETs the check's URL with a client of its own: no proxy from
// the environment, no keep-alive (nothing lingers between probes), no
// certificate verification (a box's certificate is often its own, as
// Kubernetes' probes assume), at most maxRedirects redirects to the same
// host and port, and a bounded header and body.
func probeHTTP(ctx context.Context, c *messages.HealthCheck, t Target) outcome {
	dial, done, err := dialerFor(t)
	if err != nil {
		return errored(err)
	}
	defer done()
	target, err := url.Parse(c.HTTP)
	if err != nil {
		return errored(err) // Validate parsed it
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeader,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a liveness probe, as Kubernetes' HTTPS probes
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects || hostPort(req.URL) != hostPort(target) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP, nil)
	if err != nil {
		return errored(err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Close = true
	resp, err := client.Do(req)
	if err != nil {
		return judged(ctx, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(captureLimit(t.Spec))))
	_ = resp.Body.Close()
	if err != nil {
		return judged(ctx, fmt.Errorf("reading the response: %w", err))
	}
	want := messages.DefaultHTTPStatus
	if c.HTTPStatus != nil {
		want = *c.HTTPStatus
	}
	if !want.Contains(resp.StatusCode) {
		o := failed("HTTP %s (want %d–%d)", strings.TrimSpace(resp.Status), want.Min, want.Max)
		o.output = body
		return o
	}
	return passed(body)
}

// hostPort is u's host and port, the default port of its scheme filled in.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
