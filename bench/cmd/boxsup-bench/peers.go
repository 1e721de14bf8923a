package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/boxsup/boxsup/bench"
)

// peerOptions are the flags of `make bench-peers`, defaults from the
// BENCH_PEERS* environment.
type peerOptions struct {
	list       string
	ns         string
	rounds     int
	crashes    int
	stops      int
	idle       time.Duration
	recovery   int
	ochinchina string
	noFloor    bool
	workloads  string
}

// register adds the peer flags; envInt reads an integer default from the
// environment (and records a malformed one as the parse error).
func (p *peerOptions) register(envInt func(string, int) int, envErr *error) {
	flag.StringVar(&p.list, "peers", os.Getenv("BENCH_PEERS"),
		"run the peer workloads against these supervisors: all, or a comma-separated list of "+strings.Join(bench.AllPeers, ",")+" (env BENCH_PEERS); boxsup always runs")
	flag.StringVar(&p.ns, "peers-n", envOr("BENCH_PEERS_N", "200,1000"), "services of the start/stop workloads, comma-separated (env BENCH_PEERS_N)")
	flag.IntVar(&p.rounds, "peers-rounds", envInt("BENCH_PEERS_ROUNDS", bench.DefaultPeerRounds), "rounds of the start/stop workloads (env BENCH_PEERS_ROUNDS)")
	flag.IntVar(&p.crashes, "peers-crashes", envInt("BENCH_PEERS_CRASHES", bench.DefaultPeerCrashes), "crashes of the crash→restart workload (env BENCH_PEERS_CRASHES)")
	flag.IntVar(&p.stops, "peers-stops", envInt("BENCH_PEERS_STOPS", bench.DefaultPeerIgnorerStops), "stops of the SIGTERM-ignorer workload (env BENCH_PEERS_STOPS)")
	flag.IntVar(&p.recovery, "peers-recovery", envInt("BENCH_PEERS_RECOVERY", bench.DefaultPeerRecovery), "services of the supervisor-SIGKILL workload (env BENCH_PEERS_RECOVERY)")
	idle := envOr("BENCH_PEERS_IDLE", bench.DefaultPeerIdle.String())
	d, err := time.ParseDuration(idle)
	if err != nil || d <= 0 {
		*envErr = fmt.Errorf("BENCH_PEERS_IDLE=%q is not a positive duration such as 30s", idle)
		d = bench.DefaultPeerIdle
	}
	flag.DurationVar(&p.idle, "peers-idle", d, "window of the idle-CPU workload (env BENCH_PEERS_IDLE)")
	flag.StringVar(&p.ochinchina, "peers-ochinchina", envOr("BENCH_PEERS_OCHINCHINA", "on"), "build ochinchina/supervisord from the Go module proxy for the run: on or off (env BENCH_PEERS_OCHINCHINA)")
	flag.BoolVar(&p.noFloor, "peers-no-floor", false, "skip the raw-shim floor of the start workload")
	flag.StringVar(&p.workloads, "peers-workloads", os.Getenv("BENCH_PEERS_WORKLOADS"), "run only these workloads, comma-separated: "+strings.Join(bench.AllPeerWorkloads, ",")+" (env BENCH_PEERS_WORKLOADS; default all)")
}

// envOr returns the environment variable name, or def when it is empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// config turns the options into a bench.PeersConfig.
func (p *peerOptions) config() (bench.PeersConfig, error) {
	cfg := bench.PeersConfig{
		Rounds: p.rounds, Crashes: p.crashes, IgnorerStops: p.stops, Idle: p.idle,
		Recovery: p.recovery, NoFloor: p.noFloor, Progress: os.Stderr,
	}
	for _, f := range strings.Split(p.ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("-peers-n %q: want positive integers separated by commas", p.ns)
		}
		cfg.Ns = append(cfg.Ns, n)
	}
	if p.workloads != "" {
		for _, w := range strings.Split(p.workloads, ",") {
			w = strings.TrimSpace(w)
			if !slices.Contains(bench.AllPeerWorkloads, w) {
				return cfg, fmt.Errorf("-peers-workloads: unknown workload %q (known: %s)", w, strings.Join(bench.AllPeerWorkloads, ", "))
			}
			cfg.Workloads = append(cfg.Workloads, w)
		}
	}
	switch p.ochinchina {
	case "on":
		cfg.Ochinchina = true
	case "off":
	default:
		return cfg, fmt.Errorf("-peers-ochinchina %q: want on or off", p.ochinchina)
	}
	if p.list != "all" {
		for _, name := range strings.Split(p.list, ",") {
			name = strings.TrimSpace(name)
			known := name == "ochinchina"
			for _, k := range bench.AllPeers {
				known = known || k == name
			}
			if !known {
				return cfg, fmt.Errorf("-peers: unknown supervisor %q (known: all, %s)", name, strings.Join(bench.AllPeers, ", "))
			}
			cfg.Peers = append(cfg.Peers, name)
		}
		cfg.Peers = append(cfg.Peers, "boxsup")
	}
	return cfg, nil
}

// runPeers runs the peer workloads and adds their section to the results
// file, keeping the rows of the last `make bench` that are there.
func runPeers(ctx context.Context, o options, root, shim string) error {
	cfg, err := o.peers.config()
	if err != nil {
		return err
	}
	cfg.Shim, cfg.TempDir = shim, o.tempDir
	if cfg.Boxsup, err = ensureBinary(root, "boxsup", "./cmd/boxsup"); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "boxsup-bench: not root: peers that are not installed are skipped; `sudo bench/peers/install` installs s6, runit, supervisor and pm2")
	}
	prep, runErr := bench.RunPeers(ctx, cfg)
	if prep == nil {
		return runErr
	}
	prep.Command = peersCommandLine()
	rep := &bench.Report{Leftovers: []string{}}
	if b, err := os.ReadFile(o.out); err == nil {
		var old bench.Report
		if json.Unmarshal(b, &old) == nil {
			rep = &old
		}
	}
	rep.Peers = prep
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, js, 0o644); err != nil {
		return err
	}
	fmt.Print(prep.Markdown())
	fmt.Fprintf(os.Stderr, "results: %s (peers section; took %s)\n", o.out, prep.Took)
	for _, l := range prep.Leftovers {
		fmt.Fprintln(os.Stderr, "leftover:", l)
	}
	for _, e := range prep.Errors {
		fmt.Fprintln(os.Stderr, "error:", e)
	}
	switch {
	case runErr != nil:
		return runErr
	case len(prep.Errors) > 0:
		return fmt.Errorf("%d peer workload(s) failed", len(prep.Errors))
	}
	return nil
}

// peersCommandLine reconstructs the command with the BENCH_PEERS*
// environment.
func peersCommandLine() string {
	var parts []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BENCH_PEERS") || strings.HasPrefix(kv, "BENCH_TMPDIR=") {
			parts = append(parts, kv)
		}
	}
	parts = append(parts, "go run ./bench/cmd/boxsup-bench")
	return strings.Join(append(parts, os.Args[1:]...), " ")
}
