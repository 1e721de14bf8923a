package actors

import (
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/cluster/nodeloss"
	"github.com/boxsup/boxsup/cluster/placement"
	"github.com/boxsup/boxsup/messages"
)

// ClusterConfig makes a Supervisor a member of a boxsup cluster
// (docs/CLUSTER.md): its root is reachable from the other members and from
// cluster clients through protoactor remote, every box it starts is claimed
// in etcd first (so a box ID is unique cluster-wide), and it fences and
// fails over boxes that opted in. Box actors never move: they stay local
// children of this supervisor, next to their shims.
type ClusterConfig struct {
	// Name is the cluster's name: letters, digits, '.', '_', '-'.
	Name string
	// Node is this member's name, unique in the cluster (same alphabet).
	Node string
	// Advertise is host:port where peers and clients reach this member. It
	// must be covered by the certificate's SANs. Port 0 means the port
	// chosen for Listen (for tests: it changes at every start).
	Advertise string
	// Listen is host:port to listen on; empty means Advertise.
	Listen string
	// Etcd lists the etcd client URLs.
	Etcd []string
	// EtcdTLS secures the etcd connections (https:// endpoints); nil means
	// plain http. The ownership records hold no secrets, but whoever can
	// write them can make members start or stop boxes.
	EtcdTLS *tls.Config
	// Transport secures the remote connections: mutual TLS material, or
	// the explicit insecure opt-in (logged as a warning at every start).
	Transport mtls.Transport
	// Timing is the node-loss timing: every member must use the same.
	// Zero fields take nodeloss's defaults; Timing.Validate must hold, and
	// holds again for the lease TTL etcd grants.
	Timing nodeloss.Timing

	// hooks let the package's tests shorten the member's own periods.
	hooks *clusterHooks
}

// clusterHooks are test knobs of a member.
type clusterHooks struct {
	scanInterval time.Duration
}

// clusterNamePattern is ownership's rule for cluster and node names (they
// become etcd key segments); checked here too so that a bad name fails
// before anything starts.
var clusterNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// withDefaults fills the defaults.
func (c ClusterConfig) withDefaults() ClusterConfig {
	if c.Listen == "" {
		c.Listen = c.Advertise
	}
	c.Timing = c.Timing.WithDefaults()
	return c
}

// validate refuses a configuration that cannot be honoured, before
// anything is started.
func (c ClusterConfig) validate() error {
	bad := func(format string, args ...any) error {
		return messages.Errorf(messages.ErrBadSpec, "cluster: "+format, args...)
	}
	if !clusterNamePattern.MatchString(c.Name) {
		return bad("cluster name %q: use letters, digits, '.', '_' and '-' (at most 63)", c.Name)
	}
	if !clusterNamePattern.MatchString(c.Node) {
		return bad("node name %q: use letters, digits, '.', '_' and '-' (at most 63)", c.Node)
	}
	if err := checkHostPort(c.Advertise); err != nil {
		return bad("advertise address: %v", err)
	}
	if err := checkHostPort(c.Listen); err != nil {
		return bad("listen address: %v", err)
	}
	if _, port, _ := net.SplitHostPort(c.Advertise); port == "0" && c.Listen != c.Advertise {
		return bad("advertise address %q: port 0 (the port chosen at start) needs the same listen address", c.Advertise)
	}
	if len(c.Etcd) == 0 {
		return bad("no etcd endpoint")
	}
	if (c.Transport.Material == nil) == !c.Transport.Insecure {
		return bad("give the TLS CA, certificate and key (or, on a test network only, the insecure option), not both")
	}
	if err := c.Timing.Validate(); err != nil {
		return bad("%v", err)
	}
	return nil
}

// checkHostPort checks host:port (port 0: a free port chosen at start).
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT", addr)
	}
	if host == "" {
		return fmt.Errorf("%q: no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: bad port", addr)
	}
	return nil
}

// checkPlacement checks a StartBox's cluster placement on this supervisor:
// one that is not a cluster member refuses any; a member refuses a box
// placed on another member, and fail-over of a box with secrets, whose spec
// another member would need: etcd, where that spec is kept, must never hold
// a secret in clear.
func (c *core) checkPlacement(req *messages.StartBox) error {
	p := req.Placement
	if p == nil {
		return nil
	}
	cl := c.cfg.Cluster
	if cl == nil {
		return messages.Errorf(messages.ErrBadSpec, "placement: this supervisor is not a cluster member (placement and fail-over need one)")
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Node != "" && p.Node != cl.Node {
		return messages.Errorf(messages.ErrBadSpec, "placement: the box was placed on member %q, and this is %q", p.Node, cl.Node)
	}
	if p.Failover && len(req.Spec.SecretValues()) > 0 {
		return messages.Errorf(messages.ErrUnsupported,
			"placement: a box with secrets cannot fail over: another member would need its spec, and the cluster keeps specs in etcd, which must never hold a secret (docs/CLUSTER.md)")
	}
	return nil
}

// placementKind converts a message's placement kind to package placement's.
func placementKind(k messages.PlacementKind) placement.Kind { return placement.Kind(k) }
