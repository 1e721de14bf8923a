// Package client is a boxsup cluster client: a control.Backend over every
// member of a cluster, so that each boxsup command (and each embedder that
// holds a control.Backend) works on a cluster as on one home.
//
// A request about a box goes to the member its ownership record in etcd
// names; List, MetricsAll and Events merge every member's; Start places the
// box first (a named node, spread or hash; package placement). A box whose
// member does not answer is listed as unknown, with how long ago that
// member was last seen, never as exited.
//
// The client is a protoactor remote endpoint itself: members answer a
// request by dialling the asker back (cluster/remoting), so the client
// listens on an address the members can reach, with a certificate of the
// cluster CA that names it.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/cluster/remoting"
	"github.com/boxsup/boxsup/messages"
)

// Config configures a Client.
type Config struct {
	// Cluster is the cluster's name.
	Cluster string
	// Etcd lists the etcd client URLs; EtcdTLS secures them (nil: http).
	Etcd    []string
	EtcdTLS *tls.Config
	// Transport secures the remote connections (mutual TLS, or the
	// explicit insecure opt-in, which is logged as a warning).
	Transport mtls.Transport
	// Listen is host:port for the client's own endpoint. Empty: the local
	// address this host uses to reach the first live member, port 0. Its
	// host must be named by the client certificate.
	Listen string
	// Advertise is host:port the members dial back; empty means the
	// listening address.
	Advertise string
	// Placement is how Start places a box whose request has none (default
	// spread, without fail-over).
	Placement messages.Placement
	// RequestTimeout bounds a query to one member (default 10 s); requests
	// that last (a start until ready, a stop) are bounded by their own
	// timeouts plus a margin.
	RequestTimeout time.Duration
	// Logger receives warnings (the insecure one); nil discards.
	Logger logrus.FieldLogger
}

// Client is a control.Backend over a cluster. It is safe for concurrent
// use; Close releases it.
type Client struct {
	cfg      Config
	system   *actor.ActorSystem
	endpoint *remoting.Endpoint
	etcd     *clientv3.Client
	store    *ownership.Store

	mu      sync.Mutex
	lost    map[string]time.Time // addresses remote lost, and when
	reached map[string]time.Time // addresses probed successfully, and when

	closeOnce sync.Once
}

// etcdTimeout bounds one read of etcd.
const etcdTimeout = 5 * time.Second

// New connects to the cluster: the client's own remote endpoint, then
// etcd (in that order: remote.Start replaces gRPC's global logger,
// unsynchronised, which races with a gRPC connection already running).
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Placement.Kind == "" {
		cfg.Placement.Kind = messages.PlaceSpread
	}
	if len(cfg.Etcd) == 0 {
		return nil, messages.Errorf(messages.ErrBadSpec, "cluster client: no etcd endpoint")
	}
	if cfg.Listen == "" {
		listen, err := defaultListen(cfg.Etcd[0])
		if err != nil {
			return nil, err
		}
		cfg.Listen = listen
	}
	log := cfg.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	if cfg.Transport.Insecure {
		log.Warn(mtls.InsecureWarning)
	}
	c := &Client{cfg: cfg, lost: map[string]time.Time{}, reached: map[string]time.Time{}}
	c.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	var err error
	c.endpoint, err = remoting.Start(c.system, remoting.Config{
		Listen: cfg.Listen, Advertise: cfg.Advertise, Transport: cfg.Transport,
		OnEndpointLost: c.onLost,
	})
	if err != nil {
		c.system.Shutdown()
		return nil, err
	}
	c.etcd, err = clientv3.New(clientv3.Config{Endpoints: cfg.Etcd, DialTimeout: etcdTimeout, TLS: cfg.EtcdTLS, Logger: zap.NewNop()})
	if err == nil {
		c.store, err = ownership.NewStore(c.etcd, cfg.Cluster)
		if err != nil {
			_ = c.etcd.Close()
		}
	}
	if err != nil {
		c.endpoint.Stop(ctx)
		c.system.Shutdown()
		return nil, messages.Errorf(messages.ErrBadSpec, "cluster client: %v", err)
	}
	return c, nil
}

// defaultListen picks the local address that routes to the etcd endpoint
// (the members are on its network as a rule), port 0: a UDP "connect"
// only chooses the route, no packet is sent.
func defaultListen(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", messages.Errorf(messages.ErrBadSpec, "etcd endpoint %q: want a URL such as http://10.0.0.1:2379", endpoint)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "2379"
	}
	conn, err := net.Dial("udp", net.JoinHostPort(host, port))
	if err != nil {
		return "", messages.Errorf(messages.ErrUnavailable, "no route to etcd %s to choose the client's listen address from (give it): %v", endpoint, err)
	}
	defer conn.Close()
	local, _, _ := net.SplitHostPort(conn.LocalAddr().String())
	return net.JoinHostPort(local, "0"), nil
}

func (c *Client) onLost(address string) {
	c.mu.Lock()
	c.lost[address] = time.Now()
	c.mu.Unlock()
}

// Address is the client endpoint's address (what members dial back).
func (c *Client) Address() string { return c.endpoint.Address() }

// Home implements control.Backend: a cluster has no single home; this names
// the cluster.
func (c *Client) Home() string { return "cluster " + c.cfg.Cluster }

// Close stops the endpoint and the etcd client.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.endpoint.Stop(ctx)
		c.system.Shutdown()
		_ = c.etcd.Close()
	})
	return nil
}

// members reads the live members, sorted by name.
func (c *Client) members(ctx context.Context) ([]ownership.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	ms, err := c.store.Members(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return ms, nil
}

// unavailable turns an ownership error into the client's.
func unavailable(err error) error {
	if errors.Is(err, ownership.ErrUnavailable) {
		return messages.Errorf(messages.ErrUnavailable, "the cluster's etcd: %v", err)
	}
	return err
}

// ask sends msg to the member at address and waits for its reply, at most
// timeout. A request that got no answer may have been carried out: it is
// ErrTimeout, not a refusal.
func (c *Client) ask(ctx context.Context, address string, msg any, timeout time.Duration) (any, error) {
	if err := c.reach(ctx, address); err != nil {
		return nil, err
	}
	return remoting.Request(ctx, c.system, remoting.RootOf(address), msg, timeout)
}

// owner finds the member that holds box id: its name and address.
func (c *Client) owner(ctx context.Context, id string) (node, address string, err error) {
	ectx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	o, err := c.store.Owner(ectx, id)
	if err != nil {
		return "", "", unavailable(err)
	}
	members, err := c.members(ctx)
	if err != nil {
		return "", "", err
	}
	for _, m := range members {
		if m.Node == o.Record.Node {
			return m.Node, m.Address, nil
		}
	}
	return o.Record.Node, "", messages.Errorf(messages.ErrUnavailable,
		"box %q belongs to member %s, which is not in the cluster now (its lease is gone: lost, partitioned or restarting); its state is unknown", id, o.Record.Node)
}

// statusReply unpacks a BoxStatus reply and names its member.
func statusReply(node string, v any, err error) (messages.BoxStatus, error) {
	if err != nil {
		return messages.BoxStatus{Node: node}, err
	}
	st, ok := v.(*messages.BoxStatus)
	if !ok {
		return messages.BoxStatus{Node: node}, messages.Errorf(messages.ErrInternal, "unexpected reply %T from member %s", v, node)
	}
	st.Node = node
	return *st, messages.Err(st.Err)
}

// sortStatuses orders a merged list by ID, then node.
func sortStatuses(s []messages.BoxStatus) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].ID != s[j].ID {
			return s[i].ID < s[j].ID
		}
		return s[i].Node < s[j].Node
	})
}

// describe names a member for errors.
func describe(node, address string) string {
	if address == "" {
		return "member " + node
	}
	return fmt.Sprintf("member %s (%s)", node, address)
}
