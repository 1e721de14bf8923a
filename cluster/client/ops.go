package client

import (
	"context"
	"errors"
	"time"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

var _ control.Backend = (*Client)(nil)

// Margins over an operation's own bound: the member enforces the bound
// itself, so its answer is late only when something is wrong.
const (
	replyMargin    = 15 * time.Second
	defaultOpBound = 2 * time.Minute
	waitPollEvery  = 200 * time.Millisecond
	runStopTimeout = 2 * time.Minute
)

// routed sends a request about box id to the member that holds it.
func (c *Client) routed(ctx context.Context, id string, msg any, bound time.Duration) (messages.BoxStatus, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	node, addr, err := c.owner(ctx, id)
	if err != nil {
		return messages.BoxStatus{ID: id, Node: node}, err
	}
	v, err := c.ask(ctx, addr, msg, bound)
	st, err := statusReply(node, v, err)
	if st.ID == "" {
		st.ID = id
	}
	return st, err
}

// StartExisting implements control.Backend.
func (c *Client) StartExisting(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.routed(ctx, id, &messages.StartExisting{ID: id}, defaultOpBound+replyMargin)
}

// Stop implements control.Backend.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error) {
	bound := defaultOpBound
	if timeout > 0 {
		bound = timeout
	}
	return c.routed(ctx, id, &messages.Stop{ID: id, Timeout: timeout}, bound+replyMargin)
}

// Kill implements control.Backend.
func (c *Client) Kill(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.routed(ctx, id, &messages.Kill{ID: id}, time.Minute)
}

// Signal implements control.Backend.
func (c *Client) Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error) {
	return c.routed(ctx, id, &messages.SignalBox{ID: id, Signal: signal}, c.cfg.RequestTimeout)
}

// Remove implements control.Backend.
func (c *Client) Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error) {
	return c.routed(ctx, id, &messages.Remove{ID: id, Force: force}, defaultOpBound+replyMargin)
}

// Adopt implements control.Backend: the process is one on the box's member.
func (c *Client) Adopt(ctx context.Context, id string, pid int) (messages.BoxStatus, error) {
	return c.routed(ctx, id, &messages.Adopt{ID: id, PID: pid}, c.cfg.RequestTimeout+replyMargin)
}

// Update implements control.Backend.
func (c *Client) Update(ctx context.Context, u messages.UpdateBox) (messages.BoxStatus, error) {
	return c.routed(ctx, u.ID, &u, c.cfg.RequestTimeout+replyMargin)
}

// Status implements control.Backend.
func (c *Client) Status(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.routed(ctx, id, &messages.StatusRequest{ID: id}, c.cfg.RequestTimeout)
}

// Metrics implements control.Backend.
func (c *Client) Metrics(ctx context.Context, id string) (messages.BoxMetrics, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxMetrics{ID: id}, err
	}
	_, addr, err := c.owner(ctx, id)
	if err != nil {
		return messages.BoxMetrics{ID: id}, err
	}
	v, err := c.ask(ctx, addr, &messages.MetricsRequest{ID: id}, c.cfg.RequestTimeout)
	if err != nil {
		return messages.BoxMetrics{ID: id}, err
	}
	mr, ok := v.(*messages.MetricsResponse)
	if !ok {
		return messages.BoxMetrics{ID: id}, messages.Errorf(messages.ErrInternal, "unexpected reply %T", v)
	}
	return mr.Metrics, messages.Err(mr.Err)
}

// Wait implements control.Backend by following the box's status on its
// member (a box on another host has no local event to wait on); a member
// that stops answering ends the wait with its error.
func (c *Client) Wait(ctx context.Context, id string) (messages.BoxStatus, error) {
	t := time.NewTicker(waitPollEvery)
	defer t.Stop()
	for {
		st, err := c.Status(ctx, id)
		if err != nil {
			return st, err
		}
		if st.State.AtRest() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-t.C:
		}
	}
}

// Run implements control.Backend: start, then hold the box until it comes
// to rest or ctx ends (the box is then stopped); remove removes it at the
// end. The box runs attached to its member's supervisor, not to this
// client.
func (c *Client) Run(ctx context.Context, req messages.StartBox, remove bool, hooks control.RunHooks) (messages.BoxStatus, error) {
	st, err := c.Start(ctx, req)
	if err != nil {
		if remove && !errors.Is(err, messages.ErrAlreadyExists) && st.Node != "" {
			_, _ = c.Remove(context.WithoutCancel(ctx), req.ID, true)
		}
		return st, err
	}
	if hooks.Started != nil {
		hooks.Started(st)
	}
	final, runErr := c.Wait(ctx, req.ID)
	if runErr != nil && ctx.Err() != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runStopTimeout)
		defer cancel()
		if s, err := c.Stop(stopCtx, req.ID, 0); err == nil {
			final = s
		} else {
			runErr = errors.Join(runErr, err)
		}
	}
	if hooks.Ended != nil {
		hooks.Ended(final) // the console is read before the box goes
	}
	if remove {
		if _, err := c.Remove(context.WithoutCancel(ctx), req.ID, true); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return final, runErr
}

// Nodes asks every live member about itself, sorted by name; a member
// that does not answer is listed with its name and address only and
// Accepting false.
func (c *Client) Nodes(ctx context.Context) ([]messages.NodeInfo, error) {
	members, err := c.members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]messages.NodeInfo, len(members))
	each(members, func(i int) {
		m := members[i]
		out[i] = messages.NodeInfo{Cluster: c.cfg.Cluster, Node: m.Node, Address: m.Address, Fence: "unknown", Refusal: "does not answer"}
		v, err := c.ask(ctx, m.Address, &messages.NodeInfoRequest{}, c.cfg.RequestTimeout)
		if err != nil {
			out[i].Refusal = err.Error()
			return
		}
		if info, ok := v.(*messages.NodeInfo); ok {
			out[i] = *info
		}
	})
	return out, nil
}

// Inspect implements control.Backend: the box's BoxInspect as its member
// assembles it (the spec redacted there); Status.Node names the member.
func (c *Client) Inspect(ctx context.Context, id string) (messages.BoxInspect, error) {
	if err := layout.ValidateID(id); err != nil {
		return messages.BoxInspect{ID: id}, err
	}
	node, addr, err := c.owner(ctx, id)
	if err != nil {
		return messages.BoxInspect{ID: id}, err
	}
	v, err := c.ask(ctx, addr, &messages.InspectRequest{ID: id}, c.cfg.RequestTimeout)
	if err != nil {
		return messages.BoxInspect{ID: id}, err
	}
	in, ok := v.(*messages.BoxInspect)
	if !ok {
		return messages.BoxInspect{ID: id}, messages.Errorf(messages.ErrInternal, "unexpected reply %T from member %s", v, node)
	}
	in.Status.Node = node
	return *in, nil
}
