package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// maxResponseBytes bounds one reply: a list or metrics sample of many
// thousands of boxes fits.
const maxResponseBytes = 64 << 20

// Client is the Backend over a supervisor in another process, reached
// through its control socket. Each call uses a connection of its own, so a
// Client is safe for concurrent use and holds nothing between calls.
type Client struct {
	path string
	info ServerInfo
}

// Dial checks that a server answers on the socket at path (a ping) and
// returns a Client for it. A socket nobody listens on gives an error
// satisfying errors.Is(err, syscall.ECONNREFUSED), a missing one
// fs.ErrNotExist; a server that refuses this process's uid gives
// ErrPermissionDenied.
func Dial(ctx context.Context, path string) (*Client, error) {
	c := &Client{path: path}
	resp, err := c.do(ctx, &Request{Op: OpPing})
	if err != nil {
		return nil, err
	}
	if resp.Server == nil {
		return nil, messages.Errorf(messages.ErrInternal, "control socket %s: the ping reply carries no server info", path)
	}
	c.info = *resp.Server
	return c, nil
}

// Server returns what the server said about itself when dialled.
func (c *Client) Server() ServerInfo { return c.info }

// Path returns the control socket's path.
func (c *Client) Path() string { return c.path }

// do sends one request on a new connection and reads the reply. Cancelling
// ctx abandons the connection; the server then cancels the request.
func (c *Client) do(ctx context.Context, req *Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return Response{}, fmt.Errorf("control socket %s: %w", c.path, err)
	}
	defer conn.Close()
	// The context alone bounds the call: once it is done, a deadline in the
	// past unblocks the I/O and ctx.Err() says why.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	writeErr := json.NewEncoder(conn).Encode(req)
	// Read even when the write failed: a server that refused the
	// connection may have answered (and closed) before reading.
	var resp Response
	readErr := json.NewDecoder(io.LimitReader(conn, maxResponseBytes)).Decode(&resp)
	switch {
	case readErr == nil:
		return resp, messages.Err(resp.Error)
	case ctx.Err() != nil:
		return Response{}, ctx.Err()
	case writeErr != nil:
		return Response{}, fmt.Errorf("control socket %s: sending the request: %w", c.path, writeErr)
	case errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF):
		return Response{}, messages.Errorf(messages.ErrShuttingDown,
			"control socket %s: the server closed the connection before replying", c.path)
	}
	return Response{}, fmt.Errorf("control socket %s: reading the reply: %w", c.path, readErr)
}

// statusCall runs a request whose reply is a BoxStatus.
func (c *Client) statusCall(ctx context.Context, req *Request) (messages.BoxStatus, error) {
	resp, err := c.do(ctx, req)
	st := messages.BoxStatus{ID: req.ID}
	if resp.Status != nil {
		st = *resp.Status
	}
	return st, err
}

// Start implements Backend.
func (c *Client) Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStart, ID: req.ID, Start: &req})
}

// Stop implements Backend.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStop, ID: id, Timeout: timeout})
}

// StartExisting implements Backend.
func (c *Client) StartExisting(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStartAgain, ID: id})
}

// Kill implements Backend.
func (c *Client) Kill(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpKill, ID: id})
}

// Signal implements Backend.
func (c *Client) Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpSignal, ID: id, Signal: signal})
}

// Remove implements Backend.
func (c *Client) Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpRemove, ID: id, Force: force})
}

// Status implements Backend.
func (c *Client) Status(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStatus, ID: id})
}

// Wait implements Backend. The connection stays open until the box is at
// rest; cancelling ctx hangs up and the server stops waiting.
func (c *Client) Wait(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpWait, ID: id})
}

// List implements Backend.
func (c *Client) List(ctx context.Context) ([]messages.BoxStatus, error) {
	resp, err := c.do(ctx, &Request{Op: OpList})
	return resp.Boxes, err
}

// Metrics implements Backend.
func (c *Client) Metrics(ctx context.Context, id string) (messages.BoxMetrics, error) {
	resp, err := c.do(ctx, &Request{Op: OpMetrics, ID: id})
	if resp.Metrics == nil {
		return messages.BoxMetrics{ID: id}, err
	}
	return *resp.Metrics, err
}

// MetricsAll implements Backend.
func (c *Client) MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error) {
	resp, err := c.do(ctx, &Request{Op: OpMetricsAll})
	return resp.AllMetrics, err
}

// Home implements Backend: the server's home.
func (c *Client) Home() string { return c.info.Home }

// Close implements Backend; a Client holds nothing between calls.
func (c *Client) Close() error { return nil }
