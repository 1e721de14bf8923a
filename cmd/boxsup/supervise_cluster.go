package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/cluster/nodeloss"
)

// superviseClusterFlags are supervise's flags for joining a cluster (with
// the global --cluster, --etcd and TLS flags).
type superviseClusterFlags struct {
	node, advertise, listen             string
	leaseTTL, fenceAfter, failoverAfter time.Duration
}

func (f *superviseClusterFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.node, "node", "", "this member's name in the cluster (with --cluster)")
	fs.StringVar(&f.advertise, "advertise", "", "HOST:PORT where the other members and clients reach this member (with --cluster)")
	fs.StringVar(&f.listen, "listen", "", "HOST:PORT to listen on for the cluster (default: --advertise)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", nodeloss.DefaultLeaseTTL, "TTL of this member's etcd lease (the same on every member)")
	fs.DurationVar(&f.fenceAfter, "fence-after", nodeloss.DefaultFenceAfter, "stop this member's fail-over boxes this long after its etcd lease may have expired")
	fs.DurationVar(&f.failoverAfter, "failover-after", nodeloss.DefaultFailoverAfter, "re-place a lost member's fail-over boxes this long after its lease expired (more than --fence-after plus --lease-ttl)")
}

// memberConfig is the cluster part of supervise's configuration: nil
// without --cluster (and then none of its flags may be given).
func (a *app) memberConfig(f *superviseClusterFlags, fs *pflag.FlagSet) (*actors.ClusterConfig, error) {
	if a.cluster == nil {
		for _, name := range []string{"node", "advertise", "listen", "lease-ttl", "fence-after", "failover-after"} {
			if fs.Changed(name) {
				return nil, usageError(fmt.Errorf("--%s joins a cluster: give --cluster NAME and --etcd URL too", name))
			}
		}
		return nil, nil
	}
	if f.node == "" || f.advertise == "" {
		return nil, usageError(errors.New("joining a cluster needs --node NAME and --advertise HOST:PORT"))
	}
	timing := nodeloss.Timing{LeaseTTL: f.leaseTTL, FenceAfter: f.fenceAfter, FailoverAfter: f.failoverAfter}
	if err := timing.Validate(); err != nil {
		return nil, usageError(err)
	}
	if a.cluster.Listen != "" {
		return nil, usageError(errors.New("--cluster-listen is a client's; a member listens on --listen (default --advertise)"))
	}
	tr, err := a.cluster.transport()
	if err != nil {
		return nil, err
	}
	etcdTLS, err := a.cluster.etcdTLS()
	if err != nil {
		return nil, err
	}
	return &actors.ClusterConfig{
		Name: a.cluster.Name, Node: f.node, Advertise: f.advertise, Listen: f.listen,
		Etcd: a.cluster.Etcd, EtcdTLS: etcdTLS, Transport: tr, Timing: timing,
	}, nil
}
