package remoting

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/mtls"
)

// parent is the one in-process member of the package's tests, shared by
// them all, with a stand-in root; the other members are child processes.
type parentMember struct {
	system   *actor.ActorSystem
	endpoint *Endpoint
	pki      *pki

	mu   sync.Mutex
	subs []chan string // endpoint losses, fanned out to the tests
}

var (
	parentOnce sync.Once
	parentVal  *parentMember
	parentErr  error
)

// parent starts the shared member on first use.
func parent(t *testing.T) *parentMember {
	t.Helper()
	parentOnce.Do(func() { parentVal, parentErr = startParent() })
	if parentErr != nil {
		t.Fatal(parentErr)
	}
	return parentVal
}

func startParent() (*parentMember, error) {
	dir, err := os.MkdirTemp("", "boxsup-remoting-pki-")
	if err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	now := time.Now()
	if p.ca, err = mtls.NewAuthority("cluster-ca", time.Hour, now); err != nil {
		return nil, err
	}
	if p.foreign, err = mtls.NewAuthority("foreign-ca", time.Hour, now); err != nil {
		return nil, err
	}
	if err := mtls.WriteNew(dir, "ca.pem", p.ca.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	if err := mtls.WriteNew(dir, "foreign-ca.pem", p.foreign.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	cert, key, err := p.ca.Issue("parent", []string{"127.0.0.1"}, time.Hour, now)
	if err != nil {
		return nil, err
	}
	_ = mtls.WriteNew(dir, "parent.pem", cert, 0o644)
	_ = mtls.WriteNew(dir, "parent.key", key, 0o600)
	m, err := mtls.Load(mtls.Files{CA: dir + "/ca.pem", Cert: dir + "/parent.pem", Key: dir + "/parent.key"})
	if err != nil {
		return nil, err
	}
	pm := &parentMember{system: quietSystem(), pki: p}
	pm.endpoint, err = Start(pm.system, Config{
		Listen: "127.0.0.1:0", Transport: mtls.Transport{Material: m}, ConnectRetries: 1, Logger: quietLogger(),
		OnEndpointLost: pm.lost,
	})
	if err != nil {
		return nil, err
	}
	if err := spawnRoots(pm.system, ""); err != nil {
		return nil, err
	}
	return pm, nil
}

func (pm *parentMember) lost(addr string) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	for _, ch := range pm.subs {
		select {
		case ch <- addr:
		default:
		}
	}
}

// losses returns a channel of the endpoint losses from now on.
func (pm *parentMember) losses(t *testing.T) <-chan string {
	ch := make(chan string, 16)
	pm.mu.Lock()
	pm.subs = append(pm.subs, ch)
	pm.mu.Unlock()
	return ch
}

// stopParent ends the shared member, if it was started, and removes the PKI.
func stopParent() {
	if parentVal == nil {
		return
	}
	parentVal.endpoint.Stop(context.Background())
	parentVal.system.Shutdown()
	_ = os.RemoveAll(parentVal.pki.dir)
}
