package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Probing a member before the first request to it: remote hides a refused
// or unreachable peer behind retries until the request times out (minutes
// for a stop); a probe says at once what is wrong.
const (
	probeDialTimeout = 3 * time.Second
	probeReadTimeout = 5 * time.Second
	// probeValid is how long a successful probe is trusted.
	probeValid = 10 * time.Second
)

// reach checks, at most once per probeValid, that the member at address
// can be reached and, over TLS, that both sides accept each other's
// certificate: the handshake checks the member's; the gRPC server's first
// frame (HTTP/2 settings, sent at once) proves it accepted ours, where a
// refusal arrives as a TLS alert instead.
func (c *Client) reach(ctx context.Context, address string) error {
	c.mu.Lock()
	at, ok := c.reached[address]
	c.mu.Unlock()
	if ok && time.Since(at) < probeValid {
		return nil
	}
	d := net.Dialer{Timeout: probeDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return messages.Errorf(messages.ErrUnavailable, "member at %s cannot be reached: %v", address, err)
	}
	defer conn.Close()
	if m := c.cfg.Transport.Material; m != nil {
		host, _, _ := net.SplitHostPort(address)
		cfg := m.ClientConfig()
		cfg.ServerName = host
		tc := tls.Client(conn, cfg)
		_ = tc.SetDeadline(time.Now().Add(probeReadTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return messages.Errorf(messages.ErrUnavailable, "member at %s: TLS handshake: %v (the client's certificate and the member's must come from the same cluster CA)", address, err)
		}
		var b [1]byte
		if _, err := tc.Read(b[:]); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return messages.Errorf(messages.ErrUnavailable, "member at %s refused this client: %v (the client's certificate must come from the cluster CA)", address, err)
			}
		}
	}
	c.mu.Lock()
	c.reached[address] = time.Now()
	c.mu.Unlock()
	return nil
}
