package client

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// each runs f(i) for every member at once and waits.
func each[T any](items []T, f func(i int)) {
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// answer is one member's reply to a fan-out.
type answer struct {
	member ownership.Member
	value  any
	err    error
}

// fanOut asks every live member msg at once.
func (c *Client) fanOut(ctx context.Context, msg any) ([]answer, []ownership.Owned, error) {
	members, err := c.members(ctx)
	if err != nil {
		return nil, nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	records, err := c.store.List(ectx)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	out := make([]answer, len(members))
	each(members, func(i int) {
		out[i].member = members[i]
		out[i].value, out[i].err = c.ask(ctx, members[i].Address, msg, c.cfg.RequestTimeout)
	})
	return out, records, nil
}

// List implements control.Backend: every member's boxes, each shown once,
// by the member its record names. A box whose member does not answer (not
// live in etcd, or silent) is listed as unknown, with how long ago the
// other members last saw its member (Unseen) when they know.
func (c *Client) List(ctx context.Context, sel control.Selection) ([]messages.BoxStatus, error) {
	selector, err := labels.Parse(sel.Labels)
	if err != nil {
		return nil, err
	}
	answers, records, err := c.fanOut(ctx, &messages.ListRequest{})
	if err != nil {
		return nil, err
	}
	owner := map[string]string{}
	for _, o := range records {
		owner[o.ID] = o.Record.Node
	}
	answered := map[string]bool{}
	var out []messages.BoxStatus
	for _, a := range answers {
		lr, ok := a.value.(*messages.ListResponse)
		if a.err != nil || !ok {
			continue
		}
		answered[a.member.Node] = true
		for _, st := range lr.Boxes {
			if n, ok := owner[st.ID]; ok && n != a.member.Node {
				continue // a copy left where the box no longer belongs
			}
			st.Node = a.member.Node
			out = append(out, st)
		}
	}
	var lost []ownership.Owned
	for _, o := range records {
		if !answered[o.Record.Node] {
			lost = append(lost, o)
		}
	}
	if len(lost) > 0 {
		unseen := c.unseen(ctx, answers)
		for _, o := range lost {
			why := fmt.Sprintf("member %s does not answer", o.Record.Node)
			d, ok := unseen[o.Record.Node]
			if ok && d > 0 {
				why += fmt.Sprintf(" (last seen %s ago)", d.Round(time.Second))
			}
			out = append(out, messages.BoxStatus{ID: o.ID, Node: o.Record.Node, State: messages.StateUnknown, Unseen: d, Reason: why})
		}
	}
	kept := out[:0]
	for _, st := range out {
		if selector.Matches(st.Labels) && (len(sel.States) == 0 || slices.Contains(sel.States, st.State)) &&
			(len(sel.Boxes) == 0 || slices.Contains(sel.Boxes, st.ID)) {
			kept = append(kept, st)
		}
	}
	sortStatuses(kept)
	return kept, nil
}

// unseen asks the members that answered how long ago they last saw each
// lost member; the shortest answer wins (the most recent sighting). Each
// duration is measured on one member's clock: no two clocks are compared.
func (c *Client) unseen(ctx context.Context, answers []answer) map[string]time.Duration {
	var live []ownership.Member
	for _, a := range answers {
		if a.err == nil {
			live = append(live, a.member)
		}
	}
	var mu sync.Mutex
	out := map[string]time.Duration{}
	each(live, func(i int) {
		v, err := c.ask(ctx, live[i].Address, &messages.NodeInfoRequest{}, c.cfg.RequestTimeout)
		info, ok := v.(*messages.NodeInfo)
		if err != nil || !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range info.Peers {
			if p.Alive || p.Unseen <= 0 {
				continue
			}
			if d, ok := out[p.Node]; !ok || p.Unseen < d {
				out[p.Node] = p.Unseen
			}
		}
	})
	return out
}

// MetricsAll implements control.Backend: every answering member's samples,
// sorted by ID (a box's copy left on a member it no longer belongs to is
// left out).
func (c *Client) MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error) {
	answers, records, err := c.fanOut(ctx, &messages.MetricsAllRequest{})
	if err != nil {
		return nil, err
	}
	owner := map[string]string{}
	for _, o := range records {
		owner[o.ID] = o.Record.Node
	}
	var out []messages.BoxMetrics
	for _, a := range answers {
		mr, ok := a.value.(*messages.MetricsAllResponse)
		if a.err != nil || !ok {
			continue
		}
		for _, m := range mr.Boxes {
			if n, ok := owner[m.ID]; !ok || n == a.member.Node {
				out = append(out, m)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
