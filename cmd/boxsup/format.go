package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/messages"
)

// Output formats of the commands that print something.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// checkFormat validates a --format value.
func checkFormat(f string) error {
	if f != formatTable && f != formatJSON {
		return usageError(messages.Errorf(messages.ErrBadSpec, "--format %q: want table or json", f))
	}
	return nil
}

// addFormatFlag registers --format table|json (default table).
func addFormatFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVar(format, "format", formatTable, "output format: table|json")
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tabwriter for aligned columns; call Flush when done.
func newTable(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

// humanBytes renders a size with binary units: 512B, 3.4MiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanDuration renders an uptime compactly: 850ms, 12s, 5m3s, 2h4m, 3d5h.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// exitText renders a box's last exit for a table cell.
func exitText(e *messages.ExitRecord) string {
	switch {
	case e == nil:
		return "-"
	case e.Signal != "":
		return e.Signal
	case e.ExitCode >= 0:
		return fmt.Sprintf("%d", e.ExitCode)
	}
	return "unknown"
}

// ms renders a duration in milliseconds for step reports.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

// dashIfZero renders 0 as "-".
func dashIfZero(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// orDash renders "" as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timeText renders a time for people (RFC 3339, local), "-" when zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}
