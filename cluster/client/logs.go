package client

import (
	"context"
	"io"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// logPollTimeout bounds one chunk request: the member answers within its
// own wait for new output (2 s) when it is alive.
const logPollTimeout = 15 * time.Second

// Logs returns a reader over box id's console output on its member (see
// actors.Supervisor.Logs for the options), read in chunks over remote.
// ctx bounds the whole read; Close the reader when done.
func (c *Client) Logs(ctx context.Context, id string, opts actors.LogOptions) (io.ReadCloser, error) {
	if err := layout.ValidateID(id); err != nil {
		return nil, err
	}
	_, addr, err := c.owner(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &remoteLog{c: c, ctx: ctx, addr: addr, req: messages.LogsRequest{ID: id, Follow: opts.Follow, Tail: opts.Tail,
		Since: opts.Since, Stream: string(opts.Stream), Timestamps: opts.Timestamps}}
	if err := r.fill(); err != nil {
		return nil, err
	}
	return r, nil
}

// remoteLog pulls chunks from a member's log cursor.
type remoteLog struct {
	c    *Client
	ctx  context.Context
	addr string
	req  messages.LogsRequest
	buf  []byte
	eof  bool
	err  error
}

// fill asks for the next chunk.
func (r *remoteLog) fill() error {
	v, err := r.c.ask(r.ctx, r.addr, &r.req, logPollTimeout)
	if err != nil {
		return err
	}
	ch, ok := v.(*messages.LogsChunk)
	if !ok {
		return messages.Errorf(messages.ErrInternal, "unexpected reply %T", v)
	}
	if ch.Err != nil && r.req.Cursor == "" {
		return ch.Err // the open failed: no such box, bad options
	}
	r.req.Cursor = ch.Cursor
	r.buf = append(r.buf, ch.Data...)
	if ch.EOF {
		r.eof, r.err = true, messages.Err(ch.Err)
	}
	return nil
}

// Read implements io.Reader.
func (r *remoteLog) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.eof {
			if r.err != nil {
				return 0, r.err
			}
			return 0, io.EOF
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close implements io.Closer; the member closes the cursor after a minute
// without reads.
func (r *remoteLog) Close() error {
	r.eof = true
	return nil
}
