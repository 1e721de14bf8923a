package promexport

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

// TestHealthSeries: boxsup_box_healthy is 1 for a healthy box, 0 once it is
// unhealthy, and absent for a box without a check.
func TestHealthSeries(t *testing.T) {
	sup := newSupervisor(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	ctx := ctxFor(t)
	probed := startReq("probed", "exec sleep 60")
	probed.HealthCheck = &messages.HealthCheck{TCP: ln.Addr().String(), Interval: 100 * time.Millisecond, Retries: 1}
	probed.ReadyWhen = messages.ReadyWhenHealthy
	for _, req := range []messages.StartBox{probed, startReq("plain", "exec sleep 60")} {
		if _, err := sup.Start(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	exp := NewExporter(control.NewLocal(sup), 0)
	want := func(value string) string {
		return "# HELP boxsup_box_healthy 1 while the box's health check passes, 0 while it is unhealthy; no series for a box without a check or whose check has no verdict yet.\n" +
			"# TYPE boxsup_box_healthy gauge\n" + `boxsup_box_healthy{box="probed"} ` + value + "\n"
	}
	if err := testutil.CollectAndCompare(exp, strings.NewReader(want("1")), "boxsup_box_healthy"); err != nil {
		t.Fatal(err)
	}
	_ = ln.Close()
	eventually(t, "the box to turn unhealthy", func() bool {
		st, err := sup.Status(ctx, "probed")
		return err == nil && st.Health != nil && st.Health.State == messages.HealthUnhealthy
	})
	if err := testutil.CollectAndCompare(exp, strings.NewReader(want("0")), "boxsup_box_healthy"); err != nil {
		t.Fatal(err)
	}
}
