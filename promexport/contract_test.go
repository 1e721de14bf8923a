package promexport

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"

	"github.com/boxsup/boxsup/control"
)

// Paths of the documents and deploy files, from this package's directory.
const (
	metricsDoc    = "../docs/METRICS.md"
	dashboardFile = "../deploy/grafana/boxsup-dashboard.json"
	alertsFile    = "../deploy/prometheus/boxsup-alerts.yml"
	alertsTest    = "../deploy/prometheus/boxsup-alerts.test.yml"
)

// documentedSeries reads the series table of docs/METRICS.md: name to
// status ("exported" or "planned").
func documentedSeries(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(boxsup_[a-z_]+)` \\|[^|]*\\|[^|]*\\| (exported|planned) \\|")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		t.Fatalf("%s: no series table found", metricsDoc)
	}
	return out
}

// exporterSeries returns the names of the series the Exporter describes.
func exporterSeries(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	NewExporter(nil, 0).Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	var out []string
	for d := range ch {
		m := name.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// TestSeriesTableMatchesExporter: every series the exporter describes is
// in the table as exported, and every exported row is described.
func TestSeriesTableMatchesExporter(t *testing.T) {
	t.Parallel()
	doc := documentedSeries(t)
	got := exporterSeries(t)
	for _, n := range got {
		if doc[n] != "exported" {
			t.Errorf("the exporter describes %s, but %s lists it as %q", n, metricsDoc, doc[n])
		}
	}
	for n, status := range doc {
		if status == "exported" && !slices.Contains(got, n) {
			t.Errorf("%s lists %s as exported, but the exporter does not describe it", metricsDoc, n)
		}
	}
}

// seriesIn returns the boxsup_ series names used in PromQL text, with the
// histogram suffixes taken off.
func seriesIn(text string) []string {
	var out []string
	for _, n := range regexp.MustCompile(`\bboxsup_[a-z_]+\b`).FindAllString(text, -1) {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(n, suf); ok && (base == "boxsup_start_seconds" || base == "boxsup_stop_seconds") {
				n = base
			}
		}
		out = append(out, n)
	}
	return out
}

// TestDashboardAndRulesUseDocumentedSeries keeps the deploy files from
// drifting from the series table.
func TestDashboardAndRulesUseDocumentedSeries(t *testing.T) {
	t.Parallel()
	doc := documentedSeries(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("%s: only %d queries", dashboardFile, len(exprs))
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, n := range append(seriesIn(strings.Join(exprs, "\n")), seriesIn(string(rules))...) {
		used[n] = true
		if doc[n] == "" {
			t.Errorf("%s is used by the dashboard or the rules but not documented in %s", n, metricsDoc)
		}
	}
	for n := range doc {
		if !used[n] {
			t.Errorf("%s is documented but neither charted nor alerted on", n)
		}
	}
}

// promtool returns the path of promtool, or skips.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found (Debian package prometheus; .ci/run installs it): the rules and exposition are not checked by the official tool here")
	}
	return p
}

// TestAlertRulesPassPromtool runs promtool check rules and the rules' unit
// tests.
func TestAlertRulesPassPromtool(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(alertsFile)},
		{"test", "rules", filepath.Base(alertsTest)},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = filepath.Dir(alertsFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestExpositionPassesLinters scrapes a supervisor with live and stopped
// boxes and lints the exposition with promlint and promtool check metrics.
func TestExpositionPassesLinters(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	ctx := ctxFor(t)
	for _, id := range []string{"web", "db"} {
		if _, err := sup.Start(ctx, startReq(id, "exec sleep 60")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sup.Stop(ctx, "db", 0); err != nil {
		t.Fatal(err)
	}
	exp := NewExporter(control.NewLocal(sup), 0)
	exp.ObserveStop("db", 0)
	reg, err := NewRegistry(exp)
	if err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	var text bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&text, f); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(text.String(), `boxsup_box_state{box="db",state="exited"} 1`) {
		t.Fatalf("the exposition lacks the stopped box:\n%s", text.String())
	}
	bin := promtool(t)
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = &text
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
