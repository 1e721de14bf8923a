package actors

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/health"
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
	log          logrus.FieldLogger
	system       *actor.ActorSystem
	root         *actor.RootContext
	sched        *scheduler.TimerScheduler
	cgroupParent string // relative to the cgroup root: boxsup/<hash of home>
	hooks        *testHooks
	health       *health.Scheduler
	rootPID      atomic.Pointer[actor.PID] // set once the root is spawned

	// findShimErr is why FindShim gave no default shim (cfg.ShimBinary
	// empty): what a Start that needs one reports.
	findShimErr error

	mu      sync.Mutex
	entries map[string]*boxEntry

	incarnations atomic.Uint64

	// shutting is set when Shutdown begins: new requests are refused, and
	// a request cut short by its box actor's end is answered with
	// messages.ErrShuttingDown rather than a suggestion to retry.
	shutting atomic.Bool
	// closed is closed once Shutdown has stopped delivering events.
	closed chan struct{}

	// events numbers the events and keeps the latest for replay.
	events *eventLog

	// cgroupRemovals counts box cgroups being removed after their exit;
	// Shutdown waits for them before removing the home's cgroup parent.
	cgroupRemovals sync.WaitGroup
	// cgroupSlots bounds the removals inside their blocking system calls at
	// once (see removeCgroupLater).
	cgroupSlots chan struct{}
	// transit holds spawned shims on their way to their box actors.
	transit spawnTransit
	// helpers counts the box actors' helper goroutines (I/O, watchers);
	// Shutdown waits for them, so that none outlives the supervisor.
	helpers sync.WaitGroup
	// legacyShims holds the shim binaries found to predate --capabilities,
	// each warned about once.
	legacyShims sync.Map

	// ioSlots bounds the helper goroutines that are inside blocking file or
	// process syscalls at once (see withIO).
	ioSlots chan struct{}
}

// withIO runs f, which does blocking syscalls (file I/O, fork/exec, /proc
// reads), once one of a few slots is free. Each blocked syscall holds an OS
// thread, and Go keeps the threads it made: unbounded, a storm of 1000 starts
// left the supervisor with ~25 threads. Spawning saturates two cores at two
// concurrent forks, so a bound of 2×GOMAXPROCS (at least 4) costs no
// throughput; goroutines waiting for a slot hold no thread. Nothing that can
// wait long (a shim reading its spec, a readiness wait) runs in a slot.
func (c *core) withIO(f func()) {
	c.ioSlots <- struct{}{}
	defer func() { <-c.ioSlots }()
	f()
}

// cgroupRemovalSlots is the size of core.cgroupSlots. The kernel removes
// cgroup directories one at a time (cgroup_mutex), so more concurrent rmdirs
// only wait there, each holding an OS thread that Go then keeps: unbounded,
// a stop storm of 1000 boxes left the supervisor with about 150 threads.
// Two keep one removal ready while the other is in the kernel.
const cgroupRemovalSlots = 2

// removeCgroupLater runs remove, which sweeps and removes an exited
// generation's cgroups, on its own goroutine; Shutdown waits for all. The
// goroutine takes one of cgroupRemovalSlots only around the system calls
// (withCgroupSlot), never around a wait: a sweep that drains leftovers for
// seconds must not hold back every other box's removal.
func (c *core) removeCgroupLater(remove func()) {
	c.cgroupRemovals.Add(1)
	go func() {
		defer c.cgroupRemovals.Done()
		remove()
	}()
}

// withCgroupSlot runs f, a few cgroupfs system calls, once one of
// cgroupRemovalSlots is free. A goroutine waiting for a slot holds no
// thread.
func (c *core) withCgroupSlot(f func()) {
	c.cgroupSlots <- struct{}{}
	defer func() { <-c.cgroupSlots }()
	f()
}

// ioSlotCount is the size of core.ioSlots.
func ioSlotCount() int {
	return max(4, 2*runtime.GOMAXPROCS(0))
}

// boxEntry is the part of a box that outlives its actor's incarnations: the
// keepalive write end (closing it would make an attached shim stop), the
// restart history used for the intensity limit and backoff, and the writer
// of its state.json.
type boxEntry struct {
	mu        sync.Mutex
	id        string
	box       layout.Box
	fresh     bool // spawned for a new box: wait for createBox instead of loading
	keepalive *os.File
	keepGen   uint64 // the generation the keepalive belongs to
	history   lifecycle.History
	persist   *persister
}

// entry returns the box's entry, creating it when missing.
func (c *core) entry(id string, box layout.Box) *boxEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		e = &boxEntry{id: id, box: box, persist: newPersister(box, c.withIO)}
		c.entries[id] = e
	}
	return e
}

// dropEntry forgets a removed box, closes its keepalive and stops its writer.
func (c *core) dropEntry(id string) {
	c.mu.Lock()
	e := c.entries[id]
	delete(c.entries, id)
	c.mu.Unlock()
	if e != nil {
		e.setKeepalive(0, nil)
		e.persist.drop()
	}
}

// closeEntries closes every keepalive pipe (attached shims then stop their
// guests) and stops every writer, reporting the boxes whose last state
// could not be written. Called by Shutdown, last.
func (c *core) closeEntries() (unwritten []string) {
	c.mu.Lock()
	es := make([]*boxEntry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	c.mu.Unlock()
	for _, e := range es {
		e.setKeepalive(0, nil)
		if e.persist.close() {
			unwritten = append(unwritten, e.id)
		}
	}
	sort.Strings(unwritten)
	return unwritten
}

// setKeepalive replaces the box's keepalive (the write end of generation
// gen's pipe), closing the previous one.
func (e *boxEntry) setKeepalive(gen uint64, f *os.File) {
	e.mu.Lock()
	old := e.keepalive
	e.keepalive, e.keepGen = f, gen
	e.mu.Unlock()
	if old != nil && old != f {
		_ = old.Close()
	}
}

// dropKeepalive closes the keepalive when it belongs to generation gen.
func (e *boxEntry) dropKeepalive(gen uint64) {
	e.mu.Lock()
	f := e.keepalive
	if f == nil || e.keepGen != gen {
		e.mu.Unlock()
		return
	}
	e.keepalive = nil
	e.mu.Unlock()
	_ = f.Close()
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

// shimBinaries lists every configured shim: a process is only taken for a
// box's shim when it runs one of them.
func (c *core) shimBinaries() []string {
	var out []string
	if c.cfg.ShimBinary != "" {
		out = append(out, c.cfg.ShimBinary)
	}
	for _, b := range c.cfg.Engines {
		out = append(out, b)
	}
	return out
}

// publish numbers a lifecycle event, keeps it in the history and puts it
// on the actor system's event stream.
func (c *core) publish(ev messages.Event) {
	c.events.publish(ev, func(ev messages.Event) { c.system.EventStream.Publish(ev) })
}

// boxCgroup returns the cgroup directory of a box (holding every
// generation's), or "" when boxes get no cgroup.
func (c *core) boxCgroup(id string) string {
	dir, err := shimproc.BoxCgroupDir(c.cfg.Cgroup, c.cgroupParent, id)
	if err != nil {
		return ""
	}
	return dir
}

// boxEnv is a box's lifecycle.Env.
type boxEnv struct {
	cgroup string // the box's cgroup directory, "" when none
}

func (e boxEnv) Now() time.Time { return time.Now() }
func (e boxEnv) Jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n + 1)
}
func (e boxEnv) NewToken() string {
	b := make([]byte, 12)
	_, _ = crand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
func (e boxEnv) BoxCgroup() string           { return e.cgroup }
func (e boxEnv) GenCgroup(gen uint64) string { return shimproc.GenCgroupDir(e.cgroup, gen) }
