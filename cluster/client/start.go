package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/boxsup/boxsup/cluster/placement"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// Start implements control.Backend: it places the box (req.Placement, else
// Config.Placement) and asks the chosen member to start it; the member
// claims the box ID in etcd first, so an ID taken anywhere in the cluster
// is messages.ErrAlreadyExists. The status names the member (Node).
func (c *Client) Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error) {
	if err := layout.ValidateID(req.ID); err != nil {
		return messages.BoxStatus{ID: req.ID}, err
	}
	p := c.cfg.Placement
	if req.Placement != nil {
		p = *req.Placement
	}
	if err := p.Validate(); err != nil {
		return messages.BoxStatus{ID: req.ID}, err
	}
	node, addr, err := c.place(ctx, p, req.ID)
	if err != nil {
		return messages.BoxStatus{ID: req.ID}, err
	}
	p.Node = node
	req.Placement = &p
	ready := req.ReadyTimeout
	if ready <= 0 {
		ready = messages.DefaultReadyTimeout
	}
	v, err := c.ask(ctx, addr, &req, ready+replyMargin)
	st, err := statusReply(node, v, err)
	if st.ID == "" {
		st.ID = req.ID
	}
	return st, err
}

// place chooses the member for a new box.
func (c *Client) place(ctx context.Context, p messages.Placement, id string) (node, address string, err error) {
	members, err := c.members(ctx)
	if err != nil {
		return "", "", err
	}
	if len(members) == 0 {
		return "", "", messages.Errorf(messages.ErrUnavailable, "cluster %q has no live member", c.cfg.Cluster)
	}
	addrs := map[string]string{}
	var cands []placement.Member
	for _, m := range members {
		addrs[m.Node] = m.Address
		cands = append(cands, placement.Member{Node: m.Node})
	}
	switch p.Kind {
	case messages.PlaceNode:
		if _, ok := addrs[p.Node]; !ok {
			return "", "", messages.Errorf(messages.ErrUnavailable, "member %q is not live in cluster %q", p.Node, c.cfg.Cluster)
		}
		return p.Node, addrs[p.Node], nil
	case messages.PlaceSpread:
		// Fewest boxes, then most free memory, among the members that take
		// boxes now.
		infos, err := c.Nodes(ctx)
		if err != nil {
			return "", "", err
		}
		cands = cands[:0]
		var refusals []string
		for _, in := range infos {
			if !in.Accepting {
				refusals = append(refusals, fmt.Sprintf("%s: %s", in.Node, in.Refusal))
				continue
			}
			if _, ok := addrs[in.Node]; ok {
				cands = append(cands, placement.Member{Node: in.Node, Boxes: in.Boxes, FreeMemory: in.MemAvailableBytes})
			}
		}
		if len(cands) == 0 {
			return "", "", messages.Errorf(messages.ErrUnavailable, "no member of cluster %q takes boxes now %v", c.cfg.Cluster, refusals)
		}
	}
	chosen, err := placement.Choose(placement.Placement{Kind: placement.Kind(p.Kind)}, id, cands)
	if errors.Is(err, placement.ErrNoMember) {
		return "", "", messages.Errorf(messages.ErrUnavailable, "%v", err)
	}
	if err != nil {
		return "", "", messages.Errorf(messages.ErrBadSpec, "%v", err)
	}
	return chosen, addrs[chosen], nil
}
