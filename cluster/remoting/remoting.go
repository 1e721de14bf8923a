package remoting

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/cluster/mtls"
)

// RootName is the name under which a member spawns its root supervisor, so
// that any peer can address it as (member address, RootName).
const RootName = "boxsup-root"

// defaultConnectRetries bounds remote's connection attempts to a peer. Each
// failed attempt costs remote a fixed 2 s pause inside the endpoint writer,
// after which the endpoint is declared terminated; its default of 5 would
// hide a refused peer for 10 s.
const defaultConnectRetries = 2

// Config configures one endpoint (a member or a client).
type Config struct {
	// Listen is host:port to listen on; port 0 picks a free one.
	Listen string
	// Advertise is host:port the peers dial back; empty means the listening
	// address. It must be covered by the certificate's SANs.
	Advertise string
	// Transport is the TLS material, or the explicit insecure opt-in.
	Transport mtls.Transport
	// ConnectRetries bounds connection attempts to a peer (default 2).
	ConnectRetries int
	// OnEndpointLost, when set, is called with a peer's address when remote
	// loses (or cannot establish) the connection to it. It runs on the
	// event stream's goroutine: hand it to an actor, do not block.
	OnEndpointLost func(address string)
	// Logger receives the insecure warning.
	Logger *logrus.Logger
}

// Endpoint is a running remote transport on an actor system.
type Endpoint struct {
	system *actor.ActorSystem
	remote *remote.Remote
	sub    *eventstream.Subscription
	once   sync.Once

	// mu is taken by the loss handler, which runs on the publishing
	// goroutine right after remote's endpoint manager has handled the same
	// event, and by Stop before remote.Shutdown. That orders remote's
	// unsynchronised read of its connection table (in the event handler)
	// before Shutdown's write of it, for every loss already reported.
	mu sync.Mutex
}

// Start starts remote on system. remote.Start panics when it cannot
// listen; Start turns that into an error.
func Start(system *actor.ActorSystem, cfg Config) (ep *Endpoint, err error) {
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("remoting: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("remoting: listen port %q is not a port number", portText)
	}
	opts, err := cfg.Transport.RemoteOptions(cfg.Logger)
	if err != nil {
		return nil, err
	}
	if cfg.Advertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(cfg.Advertise))
	}
	rc := remote.Configure(host, port, opts...)
	rc.MaxRetryCount = cfg.ConnectRetries
	if rc.MaxRetryCount <= 0 {
		rc.MaxRetryCount = defaultConnectRetries
	}
	r := remote.NewRemote(system, rc)
	defer func() {
		if p := recover(); p != nil {
			ep, err = nil, fmt.Errorf("remoting: starting remote on %s: %v", cfg.Listen, p)
		}
	}()
	r.Start()
	ep = &Endpoint{system: system, remote: r}
	lost := cfg.OnEndpointLost
	// Subscribed after remote's own endpoint manager, so it runs after it.
	ep.sub = system.EventStream.Subscribe(func(ev any) {
		t, ok := ev.(*remote.EndpointTerminatedEvent)
		if !ok {
			return
		}
		ep.mu.Lock()
		ep.mu.Unlock() // empty on purpose: see mu
		if lost != nil {
			lost(t.Address)
		}
	})
	return ep, nil
}

// Address is the address peers reach this endpoint at.
func (e *Endpoint) Address() string { return e.system.Address() }

// RootOf is the PID of the root supervisor of the member at address.
func RootOf(address string) *actor.PID { return actor.NewPID(address, RootName) }

// Stop shuts the transport down gracefully (remote allows itself up to 10 s
// for gRPC to stop). It does not stop the actor system.
//
// At the pinned protoactor version, Shutdown clears the endpoint manager's
// connection table while a connection that closes during the shutdown can
// still look it up (a nil dereference on that goroutine). Stop therefore
// belongs after the member has stopped talking to its peers.
func (e *Endpoint) Stop(context.Context) {
	e.once.Do(func() {
		e.mu.Lock()
		e.system.EventStream.Unsubscribe(e.sub)
		e.mu.Unlock()
		e.remote.Shutdown(true)
	})
}
