package main

import (
	"strings"
	"testing"
)

// TestRunWithAHealthCheck: run -d --ready-when healthy returns once the
// check passes, and ps shows the health (table and JSON); a policy that
// needs a check, or a ready condition without one, is a usage error.
func TestRunWithAHealthCheck(t *testing.T) {
	t.Parallel()
	e := newSupervisedEnv(t)
	id := e.runDetached("probed", []string{"--health-cmd", "test -d /proc/self", "--health-interval", "100ms",
		"--ready-when", "healthy", "--restart", "on-unhealthy"}, "exec sleep 300")
	if row := e.ps()[id]; row.State != "running" || row.Health != "healthy" {
		t.Fatalf("ps after run -d --ready-when healthy: %+v", row)
	}
	table := e.must("ps").stdout
	if !strings.Contains(table, "HEALTH") || !strings.Contains(table, "healthy") {
		t.Fatalf("ps table lacks the health:\n%s", table)
	}
	for _, args := range [][]string{
		{"run", "-d", "--restart", "on-unhealthy", "--", "/bin/true"},
		{"run", "-d", "--ready-when", "healthy", "--", "/bin/true"},
		{"run", "-d", "--health-tcp", "127.0.0.1:1", "--health-cmd", "true", "--", "/bin/true"},
	} {
		if r := e.boxsup(args...); r.code != 2 {
			t.Errorf("boxsup %s: %s; want exit 2", strings.Join(args, " "), r)
		}
	}
}
