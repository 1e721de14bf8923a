package actors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/cluster/remoting"
	"github.com/boxsup/boxsup/messages"
)

// startCluster makes the supervisor a cluster member (Config.Cluster): the
// door actor under remoting.RootName in front of the root, remote
// listening, and the first join under way. It returns once peers can reach
// the door; the join itself goes on in the background (a member whose etcd
// is out of reach still supervises its boxes, and refuses new ones until it
// holds a session). Only a configuration that cannot work is an error.
func (s *Supervisor) startCluster() error {
	cfg := *s.core.cfg.Cluster
	fenced, err := loadFenced(s.core.home)
	if err != nil {
		return fmt.Errorf("cluster: the record of fenced boxes: %w", err)
	}
	if cfg.Transport.Insecure {
		s.core.log.Warn(mtls.InsecureWarning)
	}
	// Remote first, so that an advertised port 0 becomes the port chosen;
	// a peer that asks before the door exists gets a dead letter (not
	// found), never a half-made member.
	sys := s.core.system
	var doorPID atomic.Pointer[actor.PID]
	advertise := cfg.Advertise
	if _, port, _ := net.SplitHostPort(advertise); port == "0" {
		advertise = "" // the listening address, port included (validate: same host)
	}
	ep, err := remoting.Start(sys, remoting.Config{
		Listen: cfg.Listen, Advertise: advertise, Transport: cfg.Transport,
		OnEndpointLost: func(address string) {
			if pid := doorPID.Load(); pid != nil {
				sys.Root.Send(pid, &endpointLost{address: address})
			}
		},
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if advertise == "" {
		cfg.Advertise = ep.Address()
	}
	// The etcd client after remote: remote.Start replaces gRPC's global
	// logger, unsynchronised, which races with any gRPC connection already
	// running in the process (etcd's client is one).
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Etcd,
		DialTimeout: etcdOpTimeout,
		TLS:         cfg.EtcdTLS,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		ep.Stop(context.Background())
		return messages.Errorf(messages.ErrBadSpec, "cluster: etcd client: %v", err)
	}
	store, err := ownership.NewStore(cli, cfg.Name)
	if err != nil {
		ep.Stop(context.Background())
		_ = cli.Close()
		return messages.Errorf(messages.ErrBadSpec, "cluster: %v", err)
	}
	m := newMember(s, cfg, cli, store, fenced)
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &door{m: m} }), remoting.RootName)
	if err != nil {
		ep.Stop(context.Background())
		_ = cli.Close()
		return fmt.Errorf("cluster: spawning %s (one cluster member per actor system): %w", remoting.RootName, err)
	}
	doorPID.Store(pid)
	m.endpoint = ep
	s.member, s.door = m, pid
	s.core.log.WithFields(map[string]any{"cluster": cfg.Name, "node": cfg.Node, "advertise": cfg.Advertise, "listen": ep.Address()}).
		Info("cluster member listening; joining")
	return nil
}

// leaveCluster leaves the cluster (Shutdown): the door fences this
// member's fail-over boxes (once its lease is gone another member may start
// them), then remote stops and the session is revoked, so that the others
// see this member gone at once. Boxes without fail-over keep their records
// and are shown unknown until the member comes back. It is idempotent.
func (s *Supervisor) leaveCluster(ctx context.Context) error {
	m := s.member
	if m == nil || s.leftCluster {
		return nil
	}
	v, err := s.request(ctx, &memberLeave{})
	if err != nil {
		return fmt.Errorf("leaving the cluster: %w", err)
	}
	left, _ := v.(*memberLeft)
	var errs []error
	if left != nil && len(left.errs) > 0 {
		errs = append(errs, fmt.Errorf("leaving the cluster: fencing: %v", left.errs))
	}
	m.logs.closeAll()
	m.endpoint.Stop(ctx)
	if left != nil && left.session != nil {
		closeSession(left.session)
	}
	if m.ending != nil {
		closeSession(m.ending)
	}
	_ = m.cli.Close()
	s.leftCluster = true
	s.core.log.WithField("node", m.cfg.Node).Info("left the cluster")
	return errors.Join(errs...)
}

// front is where requests go: the cluster door when the supervisor is a
// member (it claims ownership before starts), else the root.
func (s *Supervisor) front() *actor.PID {
	if s.door != nil {
		return s.door
	}
	return s.rootPID
}

// stopDoor stops the door actor (close, after leaveCluster).
func (s *Supervisor) stopDoor() error {
	if s.door == nil {
		return nil
	}
	if m := s.member; m != nil && m.unsubEvent != nil {
		m.unsubEvent()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.core.root.PoisonFuture(s.door).Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("stopping the cluster door: %w", ctx.Err())
	}
}
