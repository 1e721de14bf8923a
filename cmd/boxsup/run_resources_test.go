package main

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

func TestParseCPUs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in     string
		cpus   uint8
		millis uint32
		bad    bool
	}{
		{in: "1", cpus: 1},
		{in: "2.0", cpus: 2},
		{in: "0.5", millis: 500},
		{in: "1.25", millis: 1250},
		{in: "300", millis: 300_000}, // more vCPUs than cpus holds: a quota
		{in: "0.001", bad: true},
		{in: "0", bad: true},
		{in: "-1", bad: true},
		{in: "NaN", bad: true},
		{in: "two", bad: true},
		{in: "5000", bad: true},
	} {
		cpus, millis, err := parseCPUs(c.in)
		if c.bad {
			if !errors.Is(err, messages.ErrBadSpec) {
				t.Errorf("--cpus %s: %v, want ErrBadSpec", c.in, err)
			}
			continue
		}
		if err != nil || cpus != c.cpus || millis != c.millis {
			t.Errorf("--cpus %s: cpus %d, cpu_millis %d, %v; want %d, %d", c.in, cpus, millis, err, c.cpus, c.millis)
		}
	}
}

func TestParseMemoryMiB(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want uint32
		bad  bool
	}{
		{in: "64", want: 64}, // a bare number stays MiB, as the flag always took
		{in: "64m", want: 64},
		{in: "64MB", want: 64},
		{in: "1g", want: 1024},
		{in: "2048k", want: 2},
		{in: "1048576b", want: 1},
		{in: "1000k", bad: true}, // not a whole MiB
		{in: "0", bad: true},
		{in: "m", bad: true},
		{in: "-5m", bad: true},
		{in: "64x", bad: true},
		{in: "99999999999g", bad: true},
	} {
		got, err := parseMemoryMiB(c.in)
		if c.bad {
			if !errors.Is(err, messages.ErrBadSpec) {
				t.Errorf("--memory %s: %d, %v; want ErrBadSpec", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("--memory %s: %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestResourceFlagsFillTheSpec(t *testing.T) {
	t.Parallel()
	r := resourceFlags{cpus: "0.5", memory: "64m", pidsLimit: 50}
	var spec messages.InstanceSpec
	if err := r.apply(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.CPUMillis != 500 || spec.CPUs != 0 || spec.MemoryMiB != 64 || spec.Security.MaxProcesses != 50 {
		t.Fatalf("spec %+v", spec)
	}
	spec.Security.MaxProcesses = 10 // as --ulimit nproc=10 would
	if err := r.apply(&spec); !errors.Is(err, messages.ErrBadSpec) {
		t.Errorf("--pids-limit 50 over max_processes 10: %v, want ErrBadSpec", err)
	}
}

// TestRunWithLimits: `boxsup run --memory 64m` of a guest that allocates
// 200 MiB exits 137 and ps says oom-killed; a box under --cpus 0.5 and
// --pids-limit 50 shows them in metrics.
func TestRunWithLimits(t *testing.T) {
	const perl = "/usr/bin/perl"
	if _, err := os.Stat(perl); err != nil {
		t.Skipf("the allocating guest needs %s: %v", perl, err)
	}
	rs := shimproc.SupportedResources(shimproc.CgroupAuto, "boxsup")
	if !rs.CPU || !rs.Memory || !rs.Pids {
		t.Skipf("boxes cannot get every limit here: %s", rs.Why)
	}
	e := newEnv(t)
	r := e.boxsup("run", "--name", "hog", "--memory", "64m", "-e", markEnv, "--", perl, "-e", `my $x = "a" x (200 << 20); sleep 100`)
	if r.code != 137 {
		t.Fatalf("run of a guest allocating 200 MiB under 64 MiB: %s; want exit 137", r)
	}
	if row := e.ps()["hog"]; row.State != "exited" || row.Signal != "SIGKILL" || row.Reason != messages.ReasonOOMKilled {
		t.Errorf("ps: %+v, want exited, SIGKILL, %s", row, messages.ReasonOOMKilled)
	}

	id := e.runDetached("capped", []string{"--cpus", "0.5", "--pids-limit", "50", "--memory", "128m"}, "exec sleep 60")
	out := e.must("metrics", "--format", "json", id)
	var rows []metricsRow
	if err := json.Unmarshal([]byte(out.stdout), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("metrics --format json: %v\n%s", err, out.stdout)
	}
	if m := rows[0]; m.CPUQuota != 0.5 || m.PidsLimit != 50 || m.MemoryLimitBytes != 128<<20 || m.Tasks == 0 {
		t.Errorf("metrics %+v: want cpu_quota 0.5, pids_limit 50, memory_limit_bytes %d and tasks", m, 128<<20)
	}
	if !strings.Contains(out.stdout, `"cpu_seconds"`) {
		t.Errorf("metrics lacks cpu_seconds: %s", out.stdout)
	}
}
