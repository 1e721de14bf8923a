package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) clusterMembersCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "members [--format table|json]",
		Short: "List the live members of the cluster",
		Long: "List the cluster's live members (those whose etcd lease exists): their address, boxes,\n" +
			"free memory and whether they take new boxes (a member that may have lost its lease, or\n" +
			"fenced its fail-over boxes, does not). Needs --cluster (or --cluster-config).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if err := a.clusterOnly("cluster members"); err != nil {
				return err
			}
			c, err := a.clusterClient(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			nodes, err := c.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if format == formatJSON {
				return writeJSON(a.stdout, nodes)
			}
			tw := newTable(a.stdout, "NODE", "ADDRESS", "BOXES", "LIVE", "MEM FREE", "FENCE", "ACCEPTING", "LOST PEERS")
			for _, n := range nodes {
				accepting := "yes"
				if !n.Accepting {
					accepting = "no: " + n.Refusal
				}
				var lost []string
				for _, p := range n.Peers {
					if !p.Alive {
						lost = append(lost, fmt.Sprintf("%s (%s)", p.Node, humanDuration(p.Unseen.Round(time.Second))))
					}
				}
				if len(lost) == 0 {
					lost = []string{"-"}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", n.Node, n.Address, n.Boxes, n.LiveBoxes,
					humanBytes(n.MemAvailableBytes), n.Fence, accepting, strings.Join(lost, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table|json")
	return cmd
}
