package promexport

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

// DefaultScrapeTimeout bounds the List and MetricsAll calls of one scrape.
const DefaultScrapeTimeout = 5 * time.Second

// allStates are the states boxsup_box_state reports for every box (1 for the
// current one, 0 for the others), so that a query never misses a series.
var allStates = []messages.BoxState{
	messages.StateCreated, messages.StateStarting, messages.StateRunning, messages.StateStopping,
	messages.StateRestarting, messages.StateExited, messages.StateFailed, messages.StateUnknown,
}

// latencyBuckets span 0.5 ms to about 33 s: a reference-shim start takes a
// millisecond or two, a stop of a box that ignores SIGTERM its timeout.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 17)

// Source is what the exporter samples on each scrape; control.Backend (a
// Client or a Local) is one.
type Source interface {
	// List returns the boxes sel selects (the exporter selects all).
	List(ctx context.Context, sel control.Selection) ([]messages.BoxStatus, error)
	// MetricsAll samples every live box.
	MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error)
}

// Exporter is a prometheus.Collector that samples the boxes of a Source on
// each scrape, plus the start and stop latency histograms it is fed. The
// series and their names are a contract: docs/METRICS.md lists them.
type Exporter struct {
	backend Source
	timeout time.Duration

	startLatency prometheus.Histogram
	stopLatency  prometheus.Histogram

	cpu, memory, disk, processes, restarts, state, up, healthy    *prometheus.Desc
	cpuSeconds, tasks, memoryLimit, pidsLimit, cpuQuota, oomKills *prometheus.Desc
}

// NewExporter returns an Exporter over b. scrapeTimeout bounds the backend
// calls of one scrape (0: DefaultScrapeTimeout).
func NewExporter(b Source, scrapeTimeout time.Duration) *Exporter {
	if scrapeTimeout <= 0 {
		scrapeTimeout = DefaultScrapeTimeout
	}
	box := []string{"box"}
	return &Exporter{
		backend: b,
		timeout: scrapeTimeout,
		startLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "boxsup_start_seconds",
			Help:    "Time from spawning a box's shim to its readiness.",
			Buckets: latencyBuckets,
		}),
		stopLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "boxsup_stop_seconds",
			Help:    "Time a stop request took, from the request to the shim's exit.",
			Buckets: latencyBuckets,
		}),
		cpu:       prometheus.NewDesc("boxsup_box_cpu_percent", "CPU use of the box's process tree since the previous sample, in percent of one CPU.", box, nil),
		memory:    prometheus.NewDesc("boxsup_box_memory_bytes", "Resident memory of the box's process tree.", box, nil),
		disk:      prometheus.NewDesc("boxsup_box_disk_bytes", "Size of the box's directory.", box, nil),
		processes: prometheus.NewDesc("boxsup_box_processes", "Processes in the box's tree.", box, nil),
		restarts:  prometheus.NewDesc("boxsup_box_restarts_total", "Restarts of the box by its restart policy.", box, nil),
		cpuSeconds: prometheus.NewDesc("boxsup_box_cpu_seconds_total",
			"CPU time (user+system) of the box's process tree since its current run started; resets when the box restarts.", box, nil),
		tasks:       prometheus.NewDesc("boxsup_box_tasks", "Tasks (threads) in the box's pids cgroup, where it has one.", box, nil),
		memoryLimit: prometheus.NewDesc("boxsup_box_memory_limit_bytes", "Memory limit on the box's cgroup, where it has one.", box, nil),
		pidsLimit:   prometheus.NewDesc("boxsup_box_pids_limit", "Limit on the tasks of the box's tree, where it has one.", box, nil),
		cpuQuota:    prometheus.NewDesc("boxsup_box_cpu_quota", "CPU quota on the box's cgroup, in CPUs, where it has one.", box, nil),
		oomKills: prometheus.NewDesc("boxsup_box_oom_kills_total",
			"Processes of the box's current run killed by the OOM killer under its memory limit.", box, nil),
		state: prometheus.NewDesc("boxsup_box_state", "1 for the box's current state, 0 for the others.", []string{"box", "state"}, nil),
		healthy: prometheus.NewDesc("boxsup_box_healthy",
			"1 while the box's health check passes, 0 while it is unhealthy; no series for a box without a check or whose check has no verdict yet.", box, nil),
		up: prometheus.NewDesc("boxsup_up", "1 when the last scrape reached the supervisor.", nil, nil),
	}
}

// ObserveStart records a start latency (spawn to ready).
func (e *Exporter) ObserveStart(d time.Duration) { e.startLatency.Observe(d.Seconds()) }

// ObserveStop records a stop latency; suitable as control.ServerOptions.OnStop.
func (e *Exporter) ObserveStop(_ string, d time.Duration) { e.stopLatency.Observe(d.Seconds()) }

// Follow feeds the start histogram from sup's BoxReady events until the
// returned cancel is called (or sup shuts down).
func (e *Exporter) Follow(sup *actors.Supervisor) (cancel func()) {
	return sup.Subscribe(actors.EventFilter{}, func(ev messages.Event) {
		if r, ok := ev.(messages.BoxReady); ok {
			e.ObserveStart(r.Took)
		}
	})
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.cpu, e.memory, e.disk, e.processes, e.restarts, e.state, e.up, e.healthy,
		e.cpuSeconds, e.tasks, e.memoryLimit, e.pidsLimit, e.cpuQuota, e.oomKills} {
		ch <- d
	}
	e.startLatency.Describe(ch)
	e.stopLatency.Describe(ch)
}

// Collect implements prometheus.Collector: one List and one MetricsAll per
// scrape, bounded by the scrape timeout.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.startLatency.Collect(ch)
	e.stopLatency.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	boxes, err := e.backend.List(ctx, control.Selection{})
	if err != nil {
		ch <- prometheus.MustNewConstMetric(e.up, prometheus.GaugeValue, 0)
		ch <- prometheus.NewInvalidMetric(e.state, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(e.up, prometheus.GaugeValue, 1)
	for _, st := range boxes {
		ch <- prometheus.MustNewConstMetric(e.restarts, prometheus.CounterValue, float64(st.Restarts), st.ID)
		for _, s := range allStates {
			v := 0.0
			if st.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(e.state, prometheus.GaugeValue, v, st.ID, string(s))
		}
		if st.Health != nil {
			switch st.Health.State {
			case messages.HealthHealthy:
				ch <- prometheus.MustNewConstMetric(e.healthy, prometheus.GaugeValue, 1, st.ID)
			case messages.HealthUnhealthy:
				ch <- prometheus.MustNewConstMetric(e.healthy, prometheus.GaugeValue, 0, st.ID)
			}
		}
	}
	samples, err := e.backend.MetricsAll(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(e.cpu, err)
		return
	}
	for _, m := range samples {
		ch <- prometheus.MustNewConstMetric(e.cpu, prometheus.GaugeValue, m.CPUPercent, m.ID)
		ch <- prometheus.MustNewConstMetric(e.memory, prometheus.GaugeValue, float64(m.MemoryBytes), m.ID)
		ch <- prometheus.MustNewConstMetric(e.disk, prometheus.GaugeValue, float64(m.DiskBytes), m.ID)
		ch <- prometheus.MustNewConstMetric(e.processes, prometheus.GaugeValue, float64(m.Processes), m.ID)
		ch <- prometheus.MustNewConstMetric(e.cpuSeconds, prometheus.CounterValue, m.CPUSeconds, m.ID)
		e.collectLimits(ch, m)
	}
}

// collectLimits sends the series that exist only for a box with the
// matching cgroup: a limit of 0 is no limit, not a limit of zero.
func (e *Exporter) collectLimits(ch chan<- prometheus.Metric, m messages.BoxMetrics) {
	if m.Tasks != 0 {
		ch <- prometheus.MustNewConstMetric(e.tasks, prometheus.GaugeValue, float64(m.Tasks), m.ID)
	}
	if m.MemoryLimitBytes != 0 {
		ch <- prometheus.MustNewConstMetric(e.memoryLimit, prometheus.GaugeValue, float64(m.MemoryLimitBytes), m.ID)
		ch <- prometheus.MustNewConstMetric(e.oomKills, prometheus.CounterValue, float64(m.OOMKills), m.ID)
	}
	if m.PidsLimit != 0 {
		ch <- prometheus.MustNewConstMetric(e.pidsLimit, prometheus.GaugeValue, float64(m.PidsLimit), m.ID)
	}
	if m.CPUQuotaMillis != 0 {
		ch <- prometheus.MustNewConstMetric(e.cpuQuota, prometheus.GaugeValue, float64(m.CPUQuotaMillis)/1000, m.ID)
	}
}

// NewRegistry returns a fresh registry (never the global default) holding e
// and the Go runtime and process collectors of this process.
func NewRegistry(e *Exporter) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		e,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
