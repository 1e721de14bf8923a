package promexport

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/boxsup/boxsup/control"
)

// TestExporterServesBoxSeries scrapes /metrics over HTTP and checks the box
// series, the latency histograms and the process-level collectors.
func TestExporterServesBoxSeries(t *testing.T) {
	sup := newSupervisor(t)
	exp := NewExporter(control.NewLocal(sup), 0)
	unfollow := exp.Follow(sup)
	defer unfollow()
	srv := serve(t, sup, control.ServerOptions{OnStop: exp.ObserveStop})
	ctx := ctxFor(t)
	c, err := control.Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"web", "db"} {
		if _, err := c.Start(ctx, startReq(id, "exec sleep 60")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Stop(ctx, "db", 0); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(exp)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both starts in boxsup_start_seconds", func() bool {
		return histogramCount(t, reg, "boxsup_start_seconds") == 2
	})
	if n := histogramCount(t, reg, "boxsup_stop_seconds"); n != 1 {
		t.Fatalf("boxsup_stop_seconds count %d, want 1", n)
	}

	ms, err := ServeMetrics("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ms.Close(context.Background()); err != nil {
			t.Errorf("MetricsServer.Close: %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + ms.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	text := string(body)
	for _, want := range []string{
		`boxsup_up 1`,
		`boxsup_box_cpu_percent{box="web"}`,
		`boxsup_box_memory_bytes{box="web"}`,
		`boxsup_box_disk_bytes{box="web"}`,
		`boxsup_box_processes{box="web"} 2`,
		`# TYPE boxsup_box_cpu_seconds_total counter`,
		`boxsup_box_cpu_seconds_total{box="web"}`,
		`boxsup_box_restarts_total{box="web"} 0`,
		`boxsup_box_state{box="web",state="running"} 1`,
		`boxsup_box_state{box="db",state="exited"} 1`,
		`boxsup_box_state{box="db",state="running"} 0`,
		`boxsup_start_seconds_count 2`,
		`boxsup_stop_seconds_count 1`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, `boxsup_box_memory_bytes{box="db"}`) {
		t.Error("/metrics samples the stopped box db")
	}
}

// histogramCount returns the sample count of a histogram in reg.
func histogramCount(t *testing.T, reg prometheus.Gatherer, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && f.GetType() == dto.MetricType_HISTOGRAM {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}
