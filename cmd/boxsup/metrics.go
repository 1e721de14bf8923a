package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/messages"
)

// metricsRow is one sample in `boxsup metrics --format json`. The field
// names are part of the CLI contract (docs/CLI-GUIDE.md).
type metricsRow struct {
	ID            string    `json:"id"`
	PID           int       `json:"pid"`
	CPUPercent    float64   `json:"cpu_percent"`
	MemoryBytes   uint64    `json:"memory_bytes"`
	Processes     int       `json:"processes"`
	DiskBytes     uint64    `json:"disk_bytes"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	SampledAt     time.Time `json:"sampled_at"`
	// The CPU counter, and where the box has a cgroup for them: its tasks,
	// the limits in force and the OOM kills (absent: none).
	CPUSeconds       float64 `json:"cpu_seconds"`
	Tasks            uint64  `json:"tasks,omitempty"`
	MemoryLimitBytes uint64  `json:"memory_limit_bytes,omitempty"`
	PidsLimit        uint64  `json:"pids_limit,omitempty"`
	CPUQuota         float64 `json:"cpu_quota,omitempty"` // in CPUs
	OOMKills         uint64  `json:"oom_kills,omitempty"`
}

func newMetricsRow(m messages.BoxMetrics) metricsRow {
	return metricsRow{
		ID: m.ID, PID: m.PID, CPUPercent: m.CPUPercent, MemoryBytes: m.MemoryBytes,
		Processes: m.Processes, DiskBytes: m.DiskBytes, UptimeSeconds: m.Uptime.Seconds(), SampledAt: m.SampledAt,
		CPUSeconds: m.CPUSeconds, Tasks: m.Tasks, MemoryLimitBytes: m.MemoryLimitBytes, PidsLimit: m.PidsLimit,
		CPUQuota: float64(m.CPUQuotaMillis) / 1000, OOMKills: m.OOMKills,
	}
}

func (a *app) metricsCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "metrics [--format table|json] [ID...]",
		Short: "Sample boxes' CPU, memory, process count and disk use",
		Long: "Sample each named box (default: every live box). CPU% is the share of one CPU\n" +
			"since the previous sample taken by the same supervisor: through a running\n" +
			"`boxsup supervise` that is the previous call; otherwise the box's lifetime.",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, ids []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			samples, err := a.sample(cmd, ids)
			if err != nil {
				return err
			}
			if format == formatJSON {
				rows := make([]metricsRow, 0, len(samples))
				for _, m := range samples {
					rows = append(rows, newMetricsRow(m))
				}
				return writeJSON(a.stdout, rows)
			}
			tw := newTable(a.stdout, "ID", "PID", "CPU%", "MEM", "PROCS", "DISK", "UPTIME")
			for _, m := range samples {
				fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%d\t%s\t%s\n", m.ID, m.PID, m.CPUPercent,
					humanBytes(m.MemoryBytes), m.Processes, humanBytes(m.DiskBytes), humanDuration(m.Uptime))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table|json")
	return cmd
}

// sample returns one sample per named box, or of every live box.
func (a *app) sample(cmd *cobra.Command, ids []string) ([]messages.BoxMetrics, error) {
	ctx := cmd.Context()
	b, err := a.connect(ctx, false)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if len(ids) == 0 {
		return b.MetricsAll(ctx)
	}
	out := make([]messages.BoxMetrics, 0, len(ids))
	for _, id := range ids {
		m, err := b.Metrics(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
