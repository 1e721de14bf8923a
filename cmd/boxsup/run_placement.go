package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/boxsup/boxsup/messages"
)

// placementFlags are run's cluster placement flags.
type placementFlags struct {
	node     string
	kind     string
	failover bool
}

func (p *placementFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.node, "node", "", "cluster: run the box on this member (it never fails over)")
	f.StringVar(&p.kind, "placement", "", "cluster: spread (fewest boxes, then most free memory) or hash (of the box ID over the live members); default spread")
	f.BoolVar(&p.failover, "failover", false, "cluster: re-place the box on another member after its member's loss (docs/CLUSTER.md); not with --node")
}

// placementOf turns the flags into the StartBox's placement: nil outside a
// cluster (where the flags are refused).
func (a *app) placementOf(p *placementFlags, fs *pflag.FlagSet) (*messages.Placement, error) {
	for _, name := range []string{"node", "placement", "failover"} {
		if fs.Changed(name) {
			if err := a.clusterOnly("--" + name); err != nil {
				return nil, err
			}
		}
	}
	if a.cluster == nil {
		return nil, nil
	}
	out := &messages.Placement{Kind: messages.PlaceSpread, Failover: p.failover}
	switch {
	case p.node != "" && p.kind != "":
		return nil, usageError(fmt.Errorf("--node and --placement exclude each other"))
	case p.node != "":
		out.Kind, out.Node = messages.PlaceNode, p.node
	case p.kind != "":
		out.Kind = messages.PlacementKind(p.kind)
		if out.Kind == messages.PlaceNode {
			return nil, usageError(fmt.Errorf("--placement node: give --node NAME"))
		}
	}
	if err := out.Validate(); err != nil {
		return nil, usageError(err)
	}
	return out, nil
}
