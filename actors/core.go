package actors

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// core is what the root, every box actor and the facade share: configuration,
// the home, the actor system, and the box entries that outlive actor
// incarnations.
type core struct {
	cfg          Config
	home         *layout.Home
	log          *logrus.Logger
	system       *actor.ActorSystem
	root         *actor.RootContext
	sched        *scheduler.TimerScheduler
	cgroupParent string

	mu      sync.Mutex
	entries map[string]*boxEntry

	incarnations atomic.Uint64

	// cgroupRemovals counts box cgroups being removed after their exit;
	// Shutdown waits for them before removing the home's cgroup parent.
	cgroupRemovals sync.WaitGroup

	// ioSlots bounds the helper goroutines that are inside blocking file or
	// process syscalls at once (see withIO).
	ioSlots chan struct{}
}

// withIO runs f, which does blocking syscalls (file I/O, fork/exec, /proc
// reads), once one of a few slots is free. Each blocked syscall holds an OS
// thread, and Go keeps the threads it made: unbounded, a storm of 1000 starts
// left the supervisor with ~25 threads. Spawning saturates two cores at two
// concurrent forks (limits.md §1), so a bound of 2×GOMAXPROCS (at least 4)
// costs no throughput; goroutines waiting for a slot hold no thread.
func (c *core) withIO(f func()) {
	c.ioSlots <- struct{}{}
	defer func() { <-c.ioSlots }()
	f()
}

// ioSlotCount is the size of core.ioSlots.
func ioSlotCount() int {
	return max(4, 2*runtime.GOMAXPROCS(0))
}

// entry returns the box's entry, creating it when missing.
func (c *core) entry(id string, box layout.Box) *boxEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		e = &boxEntry{id: id, box: box}
		c.entries[id] = e
	}
	return e
}

// dropEntry forgets a removed box and closes its keepalive.
func (c *core) dropEntry(id string) {
	c.mu.Lock()
	e := c.entries[id]
	delete(c.entries, id)
	c.mu.Unlock()
	if e != nil {
		e.setKeepalive(nil)
	}
}

// closeKeepalives closes every keepalive pipe: attached shims then stop their
// guests. Called by Shutdown, last.
func (c *core) closeKeepalives() {
	c.mu.Lock()
	es := make([]*boxEntry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	c.mu.Unlock()
	for _, e := range es {
		e.setKeepalive(nil)
	}
}

// shimFor returns the shim binary for an engine.
func (c *core) shimFor(engine messages.EngineKind) (string, error) {
	if p, ok := c.cfg.Engines[engine]; ok {
		return p, nil
	}
	if engine == "" || engine == messages.EngineProcess {
		return c.cfg.ShimBinary, nil
	}
	return "", messages.Errorf(messages.ErrBadSpec, "engine: no shim configured for engine %q", engine)
}

// publish puts a lifecycle event on the actor system's event stream.
func (c *core) publish(ev messages.Event) { c.system.EventStream.Publish(ev) }

// spawnRequest builds the shimproc request for a box.
func (c *core) spawnRequest(box layout.Box, start messages.StartBox, log logrus.FieldLogger) (shimproc.SpawnRequest, error) {
	bin, err := c.shimFor(start.Spec.Engine)
	if err != nil {
		return shimproc.SpawnRequest{}, err
	}
	return shimproc.SpawnRequest{
		Box:          box,
		Binary:       bin,
		Spec:         start.Spec,
		ReadyTimeout: start.ReadyTimeout,
		Cgroup:       c.cfg.Cgroup,
		CgroupParent: c.cgroupParent,
		Logger:       log,
	}, nil
}

// keepaliveRef guards the keepalive write end of an attached box.
type keepaliveRef struct {
	mu sync.Mutex
	f  *os.File
}

// setKeepalive replaces the box's keepalive, closing the previous one.
func (e *boxEntry) setKeepalive(f *os.File) {
	e.mu.Lock()
	if e.keepalive == nil {
		e.keepalive = &keepaliveRef{}
	}
	ref := e.keepalive
	e.mu.Unlock()
	ref.mu.Lock()
	old := ref.f
	ref.f = f
	ref.mu.Unlock()
	if old != nil && old != f {
		_ = old.Close()
	}
}
