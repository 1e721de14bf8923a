package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Defaults of PeersConfig's zero fields.
const (
	DefaultPeerRounds       = 3
	DefaultPeerCrashes      = 50
	DefaultPeerIgnorerStops = 20
	DefaultPeerIdle         = 30 * time.Second
	DefaultPeerRecovery     = 200
	// DefaultCrashSpacing keeps every crash clear of the peers' guards
	// against restart loops: runsv delays the restart of a service that
	// ran less than 1 s, supervisord counts such an exit as a failed start
	// and pm2 as an unstable restart, and ochinchina/supervisord waits 5 s
	// before restarting a program that ran less than 2 s.
	DefaultCrashSpacing = 2200 * time.Millisecond
)

// DefaultPeerNs are the service counts of the start and stop workloads.
var DefaultPeerNs = []int{200, 1000}

// AllPeers are the supervisors RunPeers knows, in the order each workload
// runs them.
var AllPeers = []string{"boxsup", "s6", "runit", "supervisord", "pm2", "ochinchina/supervisord"}

// AllPeerWorkloads are the workloads RunPeers knows, in the order it runs
// them: start/stop (with memory, metrics and idle CPU), crash→restart, kill
// past the timeout, recovery after a SIGKILL of the supervisor.
var AllPeerWorkloads = []string{"scale", "crash", "ignorer", "recovery"}

// PeersConfig parameterises RunPeers.
type PeersConfig struct {
	// Boxsup and Shim are bin/boxsup and bin/boxsup-shim.
	Boxsup, Shim string
	// Peers selects supervisors by name (AllPeers); empty runs every one
	// that is installed.
	Peers []string
	// Ns are the service counts of the start/stop workloads; nil =
	// DefaultPeerNs. Memory is measured at each, metrics and idle CPU at
	// the first.
	Ns []int
	// Rounds repeats the start/stop workloads; 0 = DefaultPeerRounds.
	Rounds int
	// Crashes, IgnorerStops: samples of those workloads; 0 = default.
	Crashes, IgnorerStops int
	// Idle is the window of the idle-CPU workload; 0 = DefaultPeerIdle.
	Idle time.Duration
	// Recovery is the number of services of the supervisor-SIGKILL
	// workload; 0 = DefaultPeerRecovery.
	Recovery int
	// CrashSpacing is the least time a service runs before it is crashed
	// again; 0 = DefaultCrashSpacing.
	CrashSpacing time.Duration
	// Workloads selects workloads by name (AllPeerWorkloads); empty runs
	// every one.
	Workloads []string
	// NoFloor skips the raw-shim floor of the start workload.
	NoFloor bool
	// Ochinchina builds ochinchina/supervisord from the Go module proxy into
	// the run's temporary directory (it is removed with it).
	Ochinchina bool
	// TempDir is where the run's directories are created; "" =
	// os.TempDir().
	TempDir string
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

func (c PeersConfig) withDefaults() PeersConfig {
	if len(c.Ns) == 0 {
		c.Ns = DefaultPeerNs
	}
	if c.Rounds <= 0 {
		c.Rounds = DefaultPeerRounds
	}
	if c.Crashes <= 0 {
		c.Crashes = DefaultPeerCrashes
	}
	if c.IgnorerStops <= 0 {
		c.IgnorerStops = DefaultPeerIgnorerStops
	}
	if c.Idle <= 0 {
		c.Idle = DefaultPeerIdle
	}
	if c.Recovery <= 0 {
		c.Recovery = DefaultPeerRecovery
	}
	if c.CrashSpacing <= 0 {
		c.CrashSpacing = DefaultCrashSpacing
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// peerState is one supervisor of the run.
type peerState struct {
	driver peerDriver
	info   *PeerInfo
}

// peerRun holds what the workloads of one run share.
type peerRun struct {
	cfg   PeersConfig
	env   *peerEnv
	root  string
	peers []*peerState // the ones that run, in AllPeers order
	rep   *PeerReport
	seq   int
	data  *peerData
}

// RunPeers runs the peer workloads against boxsup and every selected
// supervisor installed here, and returns the report. It needs Linux; it
// makes this process a child subreaper for its duration so that it can
// reap and clean up whatever a peer leaves behind, and it kills, by PID,
// every process of the run still alive at the end (listed in
// PeerReport.Leftovers).
func RunPeers(ctx context.Context, cfg PeersConfig) (*PeerReport, error) {
	cfg = cfg.withDefaults()
	var err error
	if cfg.Boxsup, err = filepath.Abs(cfg.Boxsup); err != nil {
		return nil, err
	}
	if cfg.Shim, err = filepath.Abs(cfg.Shim); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(cfg.TempDir, "boxsup-peers-")
	if err != nil {
		return nil, err
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	useRawCgroups(true)                            // boxsup supervise runs with its default, cgroups where it can
	defer func() { _ = removeRawCgroupParent() }() // the floor's shims are killed by then
	unreap, err := becomeSubreaper()
	if err != nil {
		return nil, err
	}
	defer unreap()

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return nil, fmt.Errorf("the peer workloads need sleep(1): %w", err)
	}
	if sleep, err = filepath.Abs(sleep); err != nil {
		return nil, err
	}
	sleepExe, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		return nil, err
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, fmt.Errorf("the peer workloads need sh(1): %w", err)
	}
	env := &peerEnv{
		procs: newProcs(), sleep: sleep, sleepExe: sleepExe, sh: sh,
		boxsup: cfg.Boxsup, shim: cfg.Shim,
		par: 4 * runtime.GOMAXPROCS(0), cmdTimeout: 5 * time.Minute,
	}
	env.watch = newProcWatch(sleepExe)
	defer env.watch.close()

	r := &peerRun{cfg: cfg, env: env, root: root, data: newPeerData()}
	r.rep = &PeerReport{
		StartedAt: time.Now().UTC(), Host: readHostInfo(),
		Ns: cfg.Ns, Rounds: cfg.Rounds, Crashes: cfg.Crashes, IgnorerStops: cfg.IgnorerStops,
		Idle: cfg.Idle.String(), Recovery: cfg.Recovery, CrashSpacing: cfg.CrashSpacing.String(),
		RunningCheck: runningCheck(env.watch), Leftovers: []string{},
	}
	began := time.Now()
	if cfg.Ochinchina && selectedPeer(cfg.Peers, "ochinchina/supervisord") {
		r.progress("building ochinchina/supervisord (%s)", ochinchinaModule)
		env.ochinchina, env.ochinchinaErr = buildOchinchina(ctx, filepath.Join(root, "ochinchina"))
	} else {
		env.ochinchinaErr = errors.New("not asked for (BENCH_PEERS_OCHINCHINA=off, or not in BENCH_PEERS)")
	}
	r.lookupPeers(ctx)
	r.runWorkloads(ctx)
	r.rep.Rows, r.rep.Targets = r.data.rows(r.peerNames(), cfg)
	r.rep.Leftovers = append(r.rep.Leftovers, env.procs.killStrays(nil)...)
	r.rep.LoadAfter = loadAvg()
	r.rep.Took = time.Since(began).Round(time.Second).String()
	return r.rep, ctx.Err()
}

// runningCheck describes, for the report, how a service is judged running.
func runningCheck(w *procWatch) string {
	return "a service runs when a process that descends from the supervisor's own process has exec'd /usr/bin/sleep " +
		"(the real path, read from /proc/PID/exe) and is alive, as seen through " + w.method +
		"; after each start the tree is walked again and must hold exactly one sleep per service. " +
		"A stop is over when every one of those PIDs has exited."
}

// selectedPeer reports whether name is selected (an empty list selects
// every peer).
func selectedPeer(list []string, name string) bool {
	if len(list) == 0 {
		return true
	}
	for _, n := range list {
		if n == name || (name == "ochinchina/supervisord" && n == "ochinchina") {
			return true
		}
	}
	return false
}

// drivers returns every driver, in AllPeers order.
func drivers() []peerDriver {
	return []peerDriver{boxsupDriver{}, s6Driver{}, runitDriver{}, supervisordDriver{}, pm2Driver{}, ochinchinaDriver{}}
}

// lookupPeers finds the selected supervisors and records the others as
// skipped.
func (r *peerRun) lookupPeers(ctx context.Context) {
	for _, d := range drivers() {
		info := &PeerInfo{Name: d.name(), Notes: d.notes(r.env)}
		r.rep.Peers = append(r.rep.Peers, info)
		if !selectedPeer(r.cfg.Peers, d.name()) {
			info.Skipped = "not selected"
			continue
		}
		v, err := d.lookup(ctx, r.env)
		if err != nil {
			info.Skipped = err.Error()
			r.progress("%s: skipped: %v", d.name(), err)
			continue
		}
		info.Version = v
		r.peers = append(r.peers, &peerState{driver: d, info: info})
	}
}

func (r *peerRun) peerNames() []string {
	var out []string
	for _, p := range r.peers {
		out = append(out, p.driver.name())
	}
	return out
}

// progress writes one line to Config.Progress.
func (r *peerRun) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// runWorkloads runs every workload for every peer, workload by workload,
// so that the peers' figures for one workload are taken close together.
func (r *peerRun) runWorkloads(ctx context.Context) {
	want := func(w string) bool { return len(r.cfg.Workloads) == 0 || slices.Contains(r.cfg.Workloads, w) }
	for _, n := range r.cfg.Ns {
		if !want("scale") {
			break
		}
		for round := range r.cfg.Rounds {
			if ctx.Err() != nil {
				return
			}
			if !r.cfg.NoFloor {
				r.floorStart(ctx, n, round)
			}
			for _, p := range r.peers {
				extras := round == 0
				r.attempt(ctx, p, fmt.Sprintf("start/stop %d, round %d", n, round+1), r.sleepers(n), func(inst peerInstance) error {
					return r.scale(ctx, p, inst, n, extras && n == r.cfg.Ns[0], extras)
				})
			}
		}
	}
	steps := []struct {
		key   string
		what  string
		setup func() peerSetup
		run   func(*peerState, peerInstance) error
	}{
		{"crash", "crash→restart", func() peerSetup { s := r.sleepers(1); s.noBackoff = true; return s }, func(p *peerState, inst peerInstance) error { return r.crash(ctx, p, inst) }},
		{"ignorer", "kill past the timeout", func() peerSetup {
			return peerSetup{services: []peerService{{name: "ignorer", argv: ignorerArgv(r.env.sh, r.env.sleep)}}, stopTimeout: ignorerTimeout}
		}, func(p *peerState, inst peerInstance) error { return r.ignorer(ctx, p, inst) }},
		{"recovery", "supervisor SIGKILLed", func() peerSetup { return r.sleepers(r.cfg.Recovery) }, func(p *peerState, inst peerInstance) error { return r.recovery(ctx, p, inst) }},
	}
	for _, s := range steps {
		if !want(s.key) {
			continue
		}
		for _, p := range r.peers {
			if ctx.Err() != nil {
				return
			}
			r.attempt(ctx, p, s.what, s.setup(), func(inst peerInstance) error { return s.run(p, inst) })
		}
	}
}

// sleepers is a setup of n services running sleep 3600.
func (r *peerRun) sleepers(n int) peerSetup {
	svcs := make([]peerService, n)
	for i := range svcs {
		svcs[i] = peerService{name: fmt.Sprintf("svc%05d", i), argv: []string{r.env.sleep, "3600"}}
	}
	return peerSetup{services: svcs}
}

// attempt runs one workload against one peer in a fresh directory and
// always tears it down: the peer's own shutdown first, then every process
// of the run still alive is killed by PID (and reported, except after the
// recovery workload, whose orphans are its result).
func (r *peerRun) attempt(ctx context.Context, p *peerState, what string, setup peerSetup, fn func(peerInstance) error) {
	r.seq++
	name := p.driver.name()
	dir := filepath.Join(r.root, fmt.Sprintf("%03d-%s", r.seq, strings.ReplaceAll(name, "/", "-")))
	r.progress("%s: %s", name, what)
	fail := func(err error) {
		msg := fmt.Sprintf("%s, %s: %v", name, what, err)
		r.rep.Errors = append(r.rep.Errors, msg)
		r.progress("error: %s", msg)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
		return
	}
	defer os.RemoveAll(dir)
	inst, err := p.driver.newInstance(r.env, dir, setup)
	if err != nil {
		fail(err)
		return
	}
	r.env.watch.reset()
	if err := fn(inst); err != nil {
		fail(err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	if err := inst.shutdown(sctx); err != nil {
		fail(fmt.Errorf("shutdown: %w", err))
	}
	left := r.env.procs.killStrays(nil)
	if len(left) > 0 && what != "supervisor SIGKILLed" {
		r.rep.Leftovers = append(r.rep.Leftovers, fmt.Sprintf("%s, %s: %d processes left after its shutdown, killed: %s", name, what, len(left), strings.Join(left[:min(3, len(left))], "; ")))
	}
}

// buildOchinchina builds ochinchina/supervisord in a temporary module under
// dir and returns the binary's path. `go install module@version` would be
// the usual way, but it needs the proxy's version list of the module,
// which the proxy does not serve for it; a module that requires it builds
// the same program.
func buildOchinchina(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	mod, ver, _ := strings.Cut(ochinchinaModule, "@")
	bin := filepath.Join(dir, "supervisord")
	steps := [][]string{
		{"mod", "init", "boxsup-bench-ochinchina"},
		{"get", mod + "@" + ver},
		{"build", "-o", bin, mod},
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return bin, nil
}

// loadAvg returns the three load averages of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
