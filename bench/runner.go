package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/shimproc"
)

// Defaults for Config's zero fields.
const (
	DefaultBoxes      = 1000
	DefaultIterations = 200
	DefaultRounds     = 3
	// DefaultClusterBoxes is the boxes per member of row 12.
	DefaultClusterBoxes = 300
)

// AllRows are the row groups Run knows, in the order it runs them. The scale
// rows come first so that the thread count of row 7 is taken in a process
// that has not yet run anything else.
var AllRows = []string{"4", "5", "7", "6", "1", "2", "3", "8", "9", "10", "11", "12"}

// Config parameterises a run.
type Config struct {
	// Shim is the path of the reference shim (bin/boxsup-shim); a relative
	// one is made absolute (each shim runs in its box directory).
	Shim string
	// Boxes is the number of boxes of the scale rows (4–7); the targets of
	// those rows scale linearly from their 1000-box values. 0 = DefaultBoxes.
	Boxes int
	// Iterations is the number of samples of each latency row (1–3, 8);
	// 0 = DefaultIterations (row 3 takes a quarter: each sample waits out a
	// 100 ms timeout).
	Iterations int
	// Rounds is how often the scale rows are repeated; 0 = DefaultRounds.
	Rounds int
	// Boxsup is the boxsup binary, for the cluster members of rows 11–12
	// (default: boxsup beside Shim).
	Boxsup string
	// ClusterBoxes is the boxes on each member of row 12; 0 =
	// DefaultClusterBoxes.
	ClusterBoxes int
	// Rows selects row numbers ("1".."12"); empty runs all. Rows 4, 5 and 7
	// share their boxes: asking for one runs the group.
	Rows []string
	// TempDir is where the run's homes are created; "" = os.TempDir().
	TempDir string
	// Cgroup is handed to every Supervisor (default: a cgroup per box when
	// a writable cgroup v2 exists). The floors never use one.
	Cgroup shimproc.CgroupMode
	// Logger is handed to every Supervisor. Nil = warnings to stderr.
	Logger *logrus.Logger
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

func (c Config) withDefaults() Config {
	if c.Boxes <= 0 {
		c.Boxes = DefaultBoxes
	}
	if c.Iterations <= 0 {
		c.Iterations = DefaultIterations
	}
	if c.Rounds <= 0 {
		c.Rounds = DefaultRounds
	}
	if c.ClusterBoxes <= 0 {
		c.ClusterBoxes = DefaultClusterBoxes
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = logrus.New()
		c.Logger.SetLevel(logrus.WarnLevel)
	}
	return c
}

// runner holds what the rows of one run share.
type runner struct {
	cfg  Config
	root string // every home and raw-shim directory of the run lies below

	mu    sync.Mutex
	sups  []*actors.Supervisor
	homes []string

	// startFloor is row 1's floor, reused by row 8's target.
	startFloor *Summary
}

// Run measures the selected rows and returns the report. It always cleans
// up: every supervisor is shut down with StopAll, then any process still
// working under the run's directory is killed and listed in
// Report.Leftovers. A row that fails is reported in Report.Errors and the
// run continues with the next.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	shim, err := filepath.Abs(cfg.Shim)
	if err != nil {
		return nil, fmt.Errorf("shim binary: %w", err)
	}
	if _, err := os.Stat(shim); err != nil {
		return nil, fmt.Errorf("shim binary: %w", err)
	}
	cfg.Shim = shim
	if cfg.Boxsup == "" {
		cfg.Boxsup = filepath.Join(filepath.Dir(shim), "boxsup")
	}
	root, err := os.MkdirTemp(cfg.TempDir, "boxsup-bench-")
	if err != nil {
		return nil, err
	}
	root, err = filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, root: root}
	useRawCgroups(cfg.Cgroup != shimproc.CgroupOff) // the floors' shims as the boxes'
	rep := &Report{
		StartedAt:  time.Now().UTC(),
		Host:       readHostInfo(),
		Boxes:      cfg.Boxes,
		Iterations: cfg.Iterations,
		Rounds:     cfg.Rounds,
		Leftovers:  []string{},
	}
	began := time.Now()
	defer func() { rep.Took = time.Since(began).Round(time.Millisecond).String() }()

	want := map[string]bool{}
	for _, id := range cfg.Rows {
		want[id] = true
	}
	selected := func(ids ...string) bool {
		if len(want) == 0 {
			return true
		}
		for _, id := range ids {
			if want[id] {
				return true
			}
		}
		return false
	}
	groups := []struct {
		ids []string
		run func(context.Context) ([]Row, error)
	}{
		{[]string{"4", "5", "7"}, r.scaleRows},
		{[]string{"6"}, r.adoptRows},
		{[]string{"1", "2"}, r.startStopRows},
		{[]string{"3"}, r.ignorerRows},
		{[]string{"8"}, r.restartRows},
		{[]string{"9"}, r.applyRows},
		{[]string{"10"}, r.healthRows},
		{[]string{"11", "12"}, r.clusterRows},
	}
	if err := r.warmUp(); err != nil {
		rep.Errors = append(rep.Errors, "warm-up: "+err.Error())
	}
	for _, g := range groups {
		if !selected(g.ids...) || ctx.Err() != nil {
			continue
		}
		rows, err := g.run(ctx)
		rep.Rows = append(rep.Rows, rows...)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("rows %v: %v", g.ids, err))
			r.progress("rows %v failed: %v", g.ids, err)
		}
	}
	rep.Leftovers = append(rep.Leftovers, r.cleanup()...)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// progress writes one line to Config.Progress.
func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// newHome returns a fresh home directory below the run's root.
func (r *runner) newHome(name string) string {
	home := filepath.Join(r.root, name)
	r.mu.Lock()
	r.homes = append(r.homes, home)
	r.mu.Unlock()
	return home
}

// newSupervisor opens a Supervisor on home; cleanup shuts it down if the row
// did not.
func (r *runner) newSupervisor(home string) (*actors.Supervisor, error) {
	sup, err := actors.NewSupervisor(context.Background(), actors.Config{Home: home, ShimBinary: r.cfg.Shim, Logger: r.cfg.Logger, Cgroup: r.cfg.Cgroup})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.sups = append(r.sups, sup)
	r.mu.Unlock()
	return sup, nil
}

// stopAll shuts a supervisor down, stopping its boxes.
func stopAll(sup *actors.Supervisor) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return sup.Shutdown(ctx, actors.StopAll)
}

// warmUp spawns a few raw shims so that the first measured spawn does not
// pay for a cold page cache.
func (r *runner) warmUp() error {
	spec, err := sleeperSpec()
	if err != nil {
		return err
	}
	for i := range 5 {
		dir := filepath.Join(r.root, "warmup", fmt.Sprintf("w%d", i))
		js, err := rawShimDir(dir, spec)
		if err != nil {
			return err
		}
		rs, err := startRawShim(r.cfg.Shim, dir, js)
		if err != nil {
			return err
		}
		err = rs.waitReady(10 * time.Second)
		rs.kill()
		if err != nil {
			return err
		}
	}
	return os.RemoveAll(filepath.Join(r.root, "warmup"))
}

// cleanup shuts every supervisor down (StopAll; a no-op for those already
// shut down), kills whatever still runs under the root, removes the homes'
// cgroup parents and the root itself, and returns the leftovers it killed.
func (r *runner) cleanup() []string {
	r.mu.Lock()
	sups, homes := r.sups, r.homes
	r.sups = nil
	r.mu.Unlock()
	for _, sup := range sups {
		_ = stopAll(sup)
	}
	left := killLeftovers(r.root)
	if len(left) > 0 {
		time.Sleep(100 * time.Millisecond) // let the killed ones be reaped by their parents
	}
	for _, home := range homes {
		if dir, err := removeHomeCgroup(home); err != nil {
			left = append(left, fmt.Sprintf("cgroup %s: %v", dir, err))
		}
	}
	if err := removeRawCgroupParent(); err != nil {
		left = append(left, fmt.Sprintf("raw shims' cgroup: %v", err))
	}
	if err := os.RemoveAll(r.root); err != nil {
		r.progress("removing %s: %v", r.root, err)
	}
	return left
}

// removeHomeCgroup removes the (empty) cgroup parent a Supervisor creates for
// a home: boxsup/<first 12 hex digits of sha256(home)>. boxsup removes each
// box's cgroup once its shim has exited, off the actor goroutine, so this
// retries for a while; a cgroup that is still not removable then is
// returned as an error (the shared boxsup/ parent is left alone).
func removeHomeCgroup(home string) (string, error) {
	cgRoot, ok := shimproc.CgroupAvailable()
	if !ok {
		return "", nil
	}
	sum := sha256.Sum256([]byte(home))
	dir := filepath.Join(cgRoot, shimproc.DefaultCgroupParent, hex.EncodeToString(sum[:])[:12])
	return dir, removeCgroupDir(dir)
}

// parallel runs fn(0..n-1) on n goroutines and returns the wall time until
// the last returned, and the errors.
func parallel(n int, fn func(i int) error) (time.Duration, []error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return took, out
}

// firstErrors joins up to three errors of a batch, with the count.
func firstErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	shown := errs[:min(3, len(errs))]
	return fmt.Errorf("%d failed, e.g.: %w", len(errs), errors.Join(shown...))
}
