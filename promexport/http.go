package promexport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultMetricsAddr is the address boxsup supervise documents for
// --metrics-addr: loopback only. Another address is used when the operator
// names one; the endpoint has no authentication, so expose it deliberately.
const DefaultMetricsAddr = "127.0.0.1:9464"

// MetricsServer serves a registry's /metrics over HTTP on a server of its
// own (never http.DefaultServeMux), with timeouts so a slow client cannot
// hold a connection forever.
type MetricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// ServeMetrics listens on addr ("host:port"; port 0 picks a free one) and
// serves reg at /metrics until Close.
func ServeMetrics(addr string, reg *prometheus.Registry) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError, // a failed box sample must not hide the rest
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	m := &MetricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      35 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { m.done <- m.srv.Serve(ln) }()
	return m, nil
}

// Addr returns the address the server listens on (with the real port when
// addr asked for port 0).
func (m *MetricsServer) Addr() string { return m.ln.Addr().String() }

// Close shuts the server down, letting scrapes in flight finish within ctx.
func (m *MetricsServer) Close(ctx context.Context) error {
	err := m.srv.Shutdown(ctx)
	if serveErr := <-m.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
