package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// floorName is the column of the raw-shim floor.
const floorName = "floor"

// PeerReport is a run of the peer workloads.
type PeerReport struct {
	StartedAt time.Time `json:"started_at"`
	Took      string    `json:"took"`
	Command   string    `json:"command"`
	Host      HostInfo  `json:"host"`
	LoadAfter string    `json:"load_after,omitempty"`
	// The parameters.
	Ns           []int  `json:"ns"`
	Rounds       int    `json:"rounds"`
	Crashes      int    `json:"crashes"`
	IgnorerStops int    `json:"ignorer_stops"`
	Idle         string `json:"idle_window"`
	Recovery     int    `json:"recovery_services"`
	CrashSpacing string `json:"crash_spacing"`
	// RunningCheck says how a service is judged running, the same for
	// every peer.
	RunningCheck string      `json:"running_check"`
	Peers        []*PeerInfo `json:"peers"`
	Rows         []PeerRow   `json:"rows"`
	// Targets are issue 13's targets for boxsup, judged on this run.
	Targets []PeerTarget `json:"targets"`
	// Leftovers are processes a peer left running after its own shutdown
	// (killed by PID).
	Leftovers []string `json:"leftovers"`
	Errors    []string `json:"errors,omitempty"`
}

// PeerInfo is one supervisor of the run.
type PeerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Skipped says why the peer did not run; "" when it ran.
	Skipped string `json:"skipped,omitempty"`
	// Notes are how it was set up.
	Notes []string `json:"setup"`
}

// PeerRow is one workload: a cell per supervisor.
type PeerRow struct {
	ID       string              `json:"id"`
	Workload string              `json:"workload"`
	Unit     string              `json:"unit"`
	Cells    map[string]PeerCell `json:"cells"`
	Note     string              `json:"note,omitempty"`
}

// PeerCell is one supervisor's result for a workload.
type PeerCell struct {
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Samples int     `json:"samples,omitempty"`
	// Ratio is P50 divided by boxsup's P50: above 1, boxsup is faster
	// (smaller, cheaper).
	Ratio *float64 `json:"ratio_to_boxsup,omitempty"`
	// Text replaces the figures where the result is not a number.
	Text string `json:"text,omitempty"`
	// Load are the load averages (1 min) when the samples were taken.
	Load string `json:"load,omitempty"`
	// numeric is false for Text-only cells.
	numeric bool
	// showP99 prints "p50 / p99".
	showP99 bool
}

// PeerTarget is one of issue 13's targets for boxsup.
type PeerTarget struct {
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    *bool  `json:"met,omitempty"`
}

// Samples and results the workloads record, by peer.
type (
	memorySample struct {
		helpersKiB    float64 // supervisor and helpers, per service
		sleepsKiB     float64 // the sleeps, per service
		perServiceKiB float64 // helpers other than the supervisor's own processes, per service
		processes     int
	}
	metricsSample struct {
		none    bool
		err     string
		took    Summary
		covered int
		of      int
	}
	idleSample struct {
		used      time.Duration
		window    time.Duration
		processes int
	}
	recoverySample struct {
		services      int
		running       int // sleeps running once the recovery settled
		samePIDs      int
		duplicates    int
		underNew      int // sleeps under the recovered supervisor
		afterStopAll  int // sleeps still running after its stop-all
		orphanSleeps  int
		orphanHelpers int
		notes         []string
	}
	series struct {
		samples []time.Duration
		loads   []string
	}
)

func (r recoverySample) String() string {
	s := fmt.Sprintf("%d running, %d of them same PIDs; %d duplicates; %d orphans", r.running, r.samePIDs, r.duplicates, r.orphanSleeps+r.orphanHelpers)
	if r.orphanSleeps+r.orphanHelpers > 0 {
		s += fmt.Sprintf(" (%d sleeps, %d helpers)", r.orphanSleeps, r.orphanHelpers)
	}
	return s
}

// peerData collects the results of a run.
type peerData struct {
	mu       sync.Mutex
	series   map[string]map[string]*series // "start/200" → peer
	memory   map[int]map[string]memorySample
	metrics  map[string]metricsSample
	metricsN int
	idle     map[string]idleSample
	recovery map[string]recoverySample
	timeouts map[string]time.Duration
}

func newPeerData() *peerData {
	return &peerData{
		series: map[string]map[string]*series{}, memory: map[int]map[string]memorySample{},
		metrics: map[string]metricsSample{}, idle: map[string]idleSample{},
		recovery: map[string]recoverySample{}, timeouts: map[string]time.Duration{},
	}
}

func (d *peerData) seriesOf(key, peer string) *series {
	m := d.series[key]
	if m == nil {
		m = map[string]*series{}
		d.series[key] = m
	}
	s := m[peer]
	if s == nil {
		s = &series{}
		m[peer] = s
	}
	return s
}

// add records one round of a start or stop workload.
func (d *peerData) add(kind string, n int, peer string, v time.Duration, load string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.seriesOf(kind+"/"+strconv.Itoa(n), peer)
	s.samples = append(s.samples, v)
	s.loads = append(s.loads, firstField(load))
}

// setSamples records the samples of a latency workload.
func (d *peerData) setSamples(kind, peer string, samples []time.Duration, loads []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.seriesOf(kind, peer)
	s.samples = samples
	for _, l := range loads {
		s.loads = append(s.loads, firstField(l))
	}
}

func (d *peerData) setMemory(peer string, n int, m memorySample) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.memory[n] == nil {
		d.memory[n] = map[string]memorySample{}
	}
	d.memory[n][peer] = m
}

func (d *peerData) setMetrics(peer string, m metricsSample) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.metrics[peer] = m
}

func (d *peerData) setIdle(peer string, s idleSample) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.idle[peer] = s
}

func (d *peerData) setRecovery(peer string, s recoverySample) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recovery[peer] = s
}

func (d *peerData) setTimeout(peer string, t time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timeouts[peer] = t
}

// firstField returns the 1-minute load average of a loadAvg string.
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// loadRange summarises load samples as "a–b" (or "a").
func loadRange(loads []string) string {
	var vs []float64
	for _, l := range loads {
		if v, err := strconv.ParseFloat(l, 64); err == nil {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return ""
	}
	lo, hi := slices.Min(vs), slices.Max(vs)
	if lo == hi {
		return fmt.Sprintf("%.1f", lo)
	}
	return fmt.Sprintf("%.1f–%.1f", lo, hi)
}

// rows turns the data into the report's rows and targets.
func (d *peerData) rows(peers []string, cfg PeersConfig) ([]PeerRow, []PeerTarget) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rows []PeerRow
	timed := func(id, workload, key string, rounds bool, showP99 bool, note string) {
		m := d.series[key]
		if len(m) == 0 {
			return
		}
		row := PeerRow{ID: id, Workload: workload, Unit: "ms", Cells: map[string]PeerCell{}, Note: note}
		for peer, s := range m {
			if len(s.samples) == 0 {
				continue
			}
			sum := Summarize(s.samples)
			c := PeerCell{P50: ms(sum.P50), P99: ms(sum.P99), Samples: sum.N, Load: loadRange(s.loads), numeric: true, showP99: showP99}
			if rounds {
				c.P99 = ms(sum.Max)
			}
			row.Cells[peer] = c
		}
		rows = append(rows, row.withRatios())
	}
	for _, n := range cfg.Ns {
		timed(fmt.Sprintf("P1-%d", n), fmt.Sprintf("start %d until all running (median of %d rounds)", n, cfg.Rounds), "start/"+strconv.Itoa(n), true, false,
			"floor: as many reference shims spawned with plain os/exec at once, until every ready byte (make bench row 4a's floor)")
	}
	for _, n := range cfg.Ns {
		timed(fmt.Sprintf("P2-%d", n), fmt.Sprintf("stop %d until all exited (median of %d rounds)", n, cfg.Rounds), "stop/"+strconv.Itoa(n), true, false, "")
	}
	timed("P3", fmt.Sprintf("crash→restarted, p50 / p99 of %d crashes", cfg.Crashes), "crash", false, true,
		"SIGKILL to the running sleep until the service's next sleep has been exec'd; each crash comes at least "+cfg.CrashSpacing.String()+" after the previous start")
	var tnote []string
	for _, p := range peers {
		if t, ok := d.timeouts[p]; ok {
			tnote = append(tnote, fmt.Sprintf("%s %v", p, t))
		}
	}
	timed("P4", fmt.Sprintf("SIGTERM-ignorer: death minus the timeout, p50 / p99 of %d stops", cfg.IgnorerStops), "ignorer", false, true,
		"from the first stop signal the process received (seen by a real-time ptrace tracer) to its death, minus the timeout each peer applies ("+strings.Join(tnote, ", ")+"); a negative figure means the process got less grace than the timeout: the peer started its clock before the signal reached the process")
	for _, n := range cfg.Ns {
		m := d.memory[n]
		if len(m) == 0 {
			continue
		}
		row := PeerRow{ID: fmt.Sprintf("P5-%d", n), Workload: fmt.Sprintf("memory per service at %d: PSS of the supervisor and its helpers ÷ %d", n, n), Unit: "KiB", Cells: map[string]PeerCell{}}
		withSleep := PeerRow{ID: fmt.Sprintf("P5s-%d", n), Workload: fmt.Sprintf("memory per service at %d, with its sleep", n), Unit: "KiB", Cells: map[string]PeerCell{}}
		for peer, s := range m {
			row.Cells[peer] = PeerCell{P50: s.helpersKiB, P99: s.helpersKiB, Samples: 1, numeric: true}
			withSleep.Cells[peer] = PeerCell{P50: s.helpersKiB + s.sleepsKiB, P99: s.helpersKiB + s.sleepsKiB, Samples: 1, numeric: true}
		}
		row.Note = "PSS from /proc/PID/smaps_rollup of every process in the supervisor's tree other than the sleeps"
		rows = append(rows, row.withRatios(), withSleep.withRatios())
	}
	if len(d.idle) > 0 {
		row := PeerRow{ID: "P6", Workload: fmt.Sprintf("idle CPU of the supervisor and its helpers over %v, %d services", cfg.Idle, cfg.Ns[0]), Unit: "ms", Cells: map[string]PeerCell{}}
		for peer, s := range d.idle {
			row.Cells[peer] = PeerCell{P50: ms(s.used), P99: ms(s.used), Samples: 1, numeric: true}
		}
		row.Note = "sum of the run time of every thread (/proc/PID/task/*/schedstat) of the supervisor and its helpers"
		rows = append(rows, row.withRatios())
	}
	if len(d.metrics) > 0 {
		row := PeerRow{ID: "P7", Workload: fmt.Sprintf("metrics of %d services through the peer's own interface, p50 of %d calls", cfg.Ns[0], metricsCalls), Unit: "ms", Cells: map[string]PeerCell{}}
		for peer, m := range d.metrics {
			switch {
			case m.none:
				row.Cells[peer] = PeerCell{Text: "none"}
			case m.err != "":
				row.Cells[peer] = PeerCell{Text: "failed"}
			default:
				c := PeerCell{P50: ms(m.took.P50), P99: ms(m.took.P99), Samples: m.took.N, numeric: true}
				if m.covered != m.of {
					c.Text = fmt.Sprintf("%d of %d services", m.covered, m.of)
				}
				row.Cells[peer] = c
			}
		}
		row.Note = "boxsup: CPU, memory, processes and disk per box; pm2: CPU and memory per process (`pm2 jlist`, a CLI start included); ochinchina: process states only; s6, runit and supervisord report no figures"
		rows = append(rows, row.withRatios())
	}
	if len(d.recovery) > 0 {
		row := PeerRow{ID: "P8", Workload: fmt.Sprintf("supervisor SIGKILLed with %d services, then recovered as documented", cfg.Recovery), Unit: "", Cells: map[string]PeerCell{}}
		for peer, s := range d.recovery {
			c := PeerCell{Text: s.String()}
			if len(s.notes) > 0 {
				c.Text += "; " + strings.Join(s.notes, "; ")
			}
			row.Cells[peer] = c
		}
		row.Note = "same PIDs: sleeps that kept running through the crash and recovery; duplicates: sleeps beyond one per service; orphans: processes of the run still alive after the recovered supervisor's own stop-all and shutdown"
		rows = append(rows, row)
	}
	return rows, d.targets(cfg)
}

// withRatios fills every numeric cell's ratio to boxsup's.
func (row PeerRow) withRatios() PeerRow {
	b, ok := row.Cells["boxsup"]
	if !ok || !b.numeric || b.P50 <= 0 {
		return row
	}
	for peer, c := range row.Cells {
		if peer == "boxsup" || !c.numeric || c.P50 <= 0 {
			continue
		}
		ratio := c.P50 / b.P50
		c.Ratio = &ratio
		row.Cells[peer] = c
	}
	return row
}

// targets judges issue 13's targets for boxsup on this run's figures.
func (d *peerData) targets(cfg PeersConfig) []PeerTarget {
	var out []PeerTarget
	p50 := func(key, peer string) (float64, bool) {
		s := d.series[key][peer]
		if s == nil || len(s.samples) == 0 {
			return 0, false
		}
		return ms(Summarize(s.samples).P50), true
	}
	judge := func(target, value string, met bool) {
		out = append(out, PeerTarget{Target: target, Value: value, Met: &met})
	}
	nMax := slices.Max(cfg.Ns)
	start, stop := "start/"+strconv.Itoa(nMax), "stop/"+strconv.Itoa(nMax)
	if b, ok := p50(start, "boxsup"); ok {
		if s6, ok := p50(start, "s6"); ok {
			judge(fmt.Sprintf("start %d ≤ 1.0× s6", nMax), fmt.Sprintf("%.2f×", b/s6), b <= s6)
		}
		if f, ok := p50(start, floorName); ok {
			judge(fmt.Sprintf("start %d ≤ 1.2× boxsup's floor (raw shims)", nMax), fmt.Sprintf("%.2f×", b/f), b <= 1.2*f)
		}
	}
	if b, ok := p50(stop, "boxsup"); ok {
		best, who := 0.0, ""
		for peer := range d.series[stop] {
			if peer == "boxsup" {
				continue
			}
			if v, ok := p50(stop, peer); ok && (who == "" || v < best) {
				best, who = v, peer
			}
		}
		if who != "" {
			judge(fmt.Sprintf("stop %d ≤ the best peer", nMax), fmt.Sprintf("%.0f ms vs %s %.0f ms", b, who, best), b <= best)
		}
	}
	if b, ok := p50("crash", "boxsup"); ok {
		if rn, ok := p50("crash", "runit"); ok {
			judge("crash→restarted p50 ≤ runit", fmt.Sprintf("%.2f ms vs %.2f ms", b, rn), b <= rn)
		}
	}
	if m, ok := d.memory[nMax]["boxsup"]; ok {
		v := m.perServiceKiB + m.sleepsKiB
		judge(fmt.Sprintf("memory per box (PSS of shim + sleep, at %d) ≤ 700 KiB", nMax), fmt.Sprintf("%.0f KiB", v), v <= 700)
	}
	if s := d.series["ignorer"]["boxsup"]; s != nil && len(s.samples) > 0 {
		p99 := ms(Summarize(s.samples).P99)
		judge("kill past the timeout p99 ≤ 2 ms", fmt.Sprintf("%.2f ms", p99), p99 <= 2)
	}
	out = append(out, PeerTarget{Target: "MetricsAll over 1000 boxes ≤ 1.2× its floor", Value: "make bench, row 5"})
	return out
}

// formatPeerValue prints a value of a row's unit.
func formatPeerValue(v float64, unit string) string {
	switch unit {
	case "ms":
		switch {
		case v >= 1000:
			return fmt.Sprintf("%.2f s", v/1000)
		case v >= 100:
			return fmt.Sprintf("%.0f ms", v)
		case v >= 10:
			return fmt.Sprintf("%.1f ms", v)
		}
		return fmt.Sprintf("%.2f ms", v)
	case "KiB":
		return fmt.Sprintf("%.0f KiB", v)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

// Markdown renders the peer table (a column per supervisor, with the ratio
// to boxsup), the targets, the set-up of each peer and the notes.
func (r *PeerReport) Markdown() string {
	var b strings.Builder
	var cols []string
	for _, p := range r.Peers {
		if p.Skipped == "" {
			cols = append(cols, p.Name)
		}
	}
	hasFloor := false
	for _, row := range r.Rows {
		if _, ok := row.Cells[floorName]; ok {
			hasFloor = true
		}
	}
	if hasFloor {
		cols = append(cols, floorName)
	}
	b.WriteString("| workload | " + strings.Join(cols, " | ") + " |\n|---|")
	b.WriteString(strings.Repeat("---|", len(cols)) + "\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s %s |", row.ID, row.Workload)
		for _, col := range cols {
			c, ok := row.Cells[col]
			b.WriteString(" " + c.render(ok, row.Unit) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\nRatios are the peer's p50 ÷ boxsup's: above 1×, boxsup is faster or smaller.\n")
	if len(r.Targets) > 0 {
		b.WriteString("\n| issue 13 target (boxsup) | this run | met/missed |\n|---|---|---|\n")
		for _, t := range r.Targets {
			v := "report"
			if t.Met != nil {
				v = map[bool]string{true: "met", false: "missed"}[*t.Met]
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Target, t.Value, v)
		}
	}
	b.WriteString("\nNotes:\n\n")
	for _, row := range r.Rows {
		var loads []string
		for _, col := range cols {
			if c, ok := row.Cells[col]; ok && c.Load != "" {
				loads = append(loads, col+" "+c.Load)
			}
		}
		if row.Note == "" && len(loads) == 0 {
			continue
		}
		fmt.Fprintf(&b, "- %s: %s", row.ID, row.Note)
		if len(loads) > 0 {
			if row.Note != "" {
				b.WriteString("; ")
			}
			b.WriteString("load average (1 min) at the samples: " + strings.Join(loads, ", "))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "- running: %s\n", r.RunningCheck)
	for _, p := range r.Peers {
		if p.Skipped != "" {
			fmt.Fprintf(&b, "- %s skipped: %s\n", p.Name, p.Skipped)
		}
	}
	return b.String()
}

// render prints a cell.
func (c PeerCell) render(ok bool, unit string) string {
	if !ok {
		return "—"
	}
	if !c.numeric {
		return c.Text
	}
	s := formatPeerValue(c.P50, unit)
	if c.showP99 {
		s += " / " + formatPeerValue(c.P99, unit)
	}
	if c.Ratio != nil {
		s += fmt.Sprintf(" (%.2f×)", *c.Ratio)
	}
	if c.Text != "" {
		s += " " + c.Text
	}
	return s
}

// SetupMarkdown lists how each peer was set up, for docs/PERFORMANCE.md.
func (r *PeerReport) SetupMarkdown() string {
	var b strings.Builder
	for _, p := range r.Peers {
		v := ""
		if p.Version != "" {
			v = " " + p.Version
		}
		fmt.Fprintf(&b, "**%s%s**\n\n", p.Name, v)
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}
