// Command boxsup-bench measures boxsup against the physical floors of this
// machine (the design's performance targets) and prints the result as a markdown table; the same
// data goes to bench/results.json. `make bench` runs it after `make build`.
//
// BENCH_BOXES (default 1000) sets the number of boxes of the scale rows;
// their targets scale with it. BENCH_ITERATIONS (default 200) and
// BENCH_ROUNDS (default 3) set the samples of the latency rows and the
// rounds of the scale rows. Flags override the environment; -h lists them.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"

	"github.com/boxsup/boxsup/bench"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/shimproc"
)

// modulePath identifies the boxsup module root when walking up from the
// working directory.
const modulePath = "github.com/boxsup/boxsup"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "boxsup-bench:", err)
		os.Exit(1)
	}
}

// options are the command line, defaults from the environment.
type options struct {
	boxes, iterations, rounds int
	clusterBoxes              int
	rows, out, shim, logLevel string
	tempDir, cgroup           string
	cpuProfile, blockProfile  string
	mutexProfile, traceFile   string
	quiet                     bool
	peers                     peerOptions
}

func parseFlags() (options, error) {
	var o options
	var err error
	envInt := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, perr := strconv.Atoi(v)
		if perr != nil || n <= 0 {
			err = fmt.Errorf("%s=%q is not a positive integer", name, v)
			return def
		}
		return n
	}
	flag.IntVar(&o.boxes, "boxes", envInt("BENCH_BOXES", bench.DefaultBoxes), "boxes of the scale rows 4–7 and of row 9 (env BENCH_BOXES)")
	flag.IntVar(&o.iterations, "iterations", envInt("BENCH_ITERATIONS", bench.DefaultIterations), "samples of the latency rows (env BENCH_ITERATIONS)")
	flag.IntVar(&o.rounds, "rounds", envInt("BENCH_ROUNDS", bench.DefaultRounds), "rounds of the scale rows (env BENCH_ROUNDS)")
	flag.IntVar(&o.clusterBoxes, "cluster-boxes", envInt("BENCH_CLUSTER_BOXES", bench.DefaultClusterBoxes), "boxes on each of the 3 cluster members of row 12 (env BENCH_CLUSTER_BOXES)")
	flag.StringVar(&o.rows, "rows", "", "comma-separated rows to run, e.g. 1,2 (default all: "+strings.Join(bench.AllRows, ",")+")")
	flag.StringVar(&o.out, "out", "", "JSON results file (default MODULE/bench/results.json)")
	flag.StringVar(&o.shim, "shim", "", "shim binary (default MODULE/bin/boxsup-shim, built when missing)")
	flag.StringVar(&o.tempDir, "tmpdir", os.Getenv("BENCH_TMPDIR"), "parent directory of the run's homes (env BENCH_TMPDIR; default the parent of boxsup's default home, $XDG_STATE_HOME or ~/.local/state)")
	flag.StringVar(&o.cgroup, "cgroup", "auto", "box cgroups of the supervisors: auto (when cgroup v2 is writable) or off")
	flag.StringVar(&o.logLevel, "log-level", "warn", "level of the supervisors' logs on stderr")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	flag.StringVar(&o.blockProfile, "blockprofile", "", "write a block profile of the run to this file")
	flag.StringVar(&o.mutexProfile, "mutexprofile", "", "write a mutex profile of the run to this file")
	flag.StringVar(&o.traceFile, "trace", "", "write an execution trace of the run to this file (go tool trace -pprof=syscall turns it into a profile of time blocked in system calls)")
	flag.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	o.peers.register(envInt, &err)
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	return o, err
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results.json")
	}
	if o.shim == "" {
		if o.shim, err = ensureBinary(root, "boxsup-shim", "./cmd/boxsup-shim"); err != nil {
			return err
		}
	}
	if o.tempDir == "" {
		if o.tempDir, err = defaultRunParent(); err != nil {
			return err
		}
	}
	if o.peers.list != "" && o.rows == "" {
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		return runPeers(ctx, o, root, o.shim)
	}
	log, err := logging.New(logging.Options{Level: o.logLevel})
	if err != nil {
		return err
	}
	cfg := bench.Config{
		Shim:         o.shim,
		Boxes:        o.boxes,
		Iterations:   o.iterations,
		Rounds:       o.rounds,
		ClusterBoxes: o.clusterBoxes,
		TempDir:      o.tempDir,
		Logger:       log,
		Progress:     os.Stderr,
	}
	if o.quiet {
		cfg.Progress = nil
	}
	switch o.cgroup {
	case "auto":
		cfg.Cgroup = shimproc.CgroupAuto
	case "off":
		cfg.Cgroup = shimproc.CgroupOff
	default:
		return fmt.Errorf("-cgroup %q: want auto or off", o.cgroup)
	}
	if o.rows != "" {
		cfg.Rows = strings.Split(o.rows, ",")
	}

	stopProfiles, err := startProfiles(o)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, runErr := bench.Run(ctx, cfg)
	if err := stopProfiles(); err != nil {
		return err
	}
	if rep == nil {
		return runErr
	}
	rep.Command = commandLine()
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, js, 0o644); err != nil {
		return err
	}
	fmt.Print(rep.Markdown())
	fmt.Fprintf(os.Stderr, "results: %s (took %s)\n", o.out, rep.Took)
	for _, l := range rep.Leftovers {
		fmt.Fprintln(os.Stderr, "leftover process killed:", l)
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(os.Stderr, "error:", e)
	}
	switch {
	case runErr != nil:
		return runErr
	case len(rep.Errors) > 0:
		return fmt.Errorf("%d row group(s) failed", len(rep.Errors))
	case len(rep.Leftovers) > 0:
		return fmt.Errorf("%d process(es) were left behind", len(rep.Leftovers))
	}
	return nil
}

// commandLine reconstructs the command with the BENCH_* environment.
func commandLine() string {
	var parts []string
	for _, name := range []string{"BENCH_BOXES", "BENCH_ITERATIONS", "BENCH_ROUNDS", "BENCH_CLUSTER_BOXES", "BENCH_TMPDIR"} {
		if v := os.Getenv(name); v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	parts = append(parts, "go run ./bench/cmd/boxsup-bench")
	parts = append(parts, os.Args[1:]...)
	return strings.Join(parts, " ")
}

// moduleRoot walks up from the working directory to boxsup's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me inside the boxsup module (no go.mod of " + modulePath + " above the working directory)")
		}
		dir = parent
	}
}

// defaultRunParent is where boxsup keeps homes by default ($XDG_STATE_HOME,
// else ~/.local/state): the run measures the filesystem a real home lives
// on. (/tmp can be a poor stand-in: on the machine of docs/PERFORMANCE.md
// creating a file there cost ten times more than under /root.)
func defaultRunParent() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no $XDG_STATE_HOME and no home directory: %w (use -tmpdir)", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// ensureBinary returns MODULE/bin/NAME, building it from pkg first when it
// is missing (a fresh clone that skipped `make build`).
func ensureBinary(root, name, pkg string) (string, error) {
	bin := filepath.Join(root, "bin", name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	fmt.Fprintln(os.Stderr, "building", bin)
	cmd := exec.Command(goBin, "build", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	return bin, nil
}

// startProfiles starts the profiles asked for and returns the function that
// writes them.
func startProfiles(o options) (func() error, error) {
	var cpu *os.File
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		cpu = f
	}
	var tr *os.File
	if o.traceFile != "" {
		f, err := os.Create(o.traceFile)
		if err != nil {
			return nil, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return nil, err
		}
		tr = f
	}
	if o.blockProfile != "" {
		runtime.SetBlockProfileRate(1)
	}
	if o.mutexProfile != "" {
		runtime.SetMutexProfileFraction(1)
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if tr != nil {
			trace.Stop()
			errs = append(errs, tr.Close())
		}
		for _, p := range []struct{ name, path string }{{"block", o.blockProfile}, {"mutex", o.mutexProfile}} {
			if p.path == "" {
				continue
			}
			f, err := os.Create(p.path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, pprof.Lookup(p.name).WriteTo(f, 0), f.Close())
		}
		return errors.Join(errs...)
	}, nil
}
