package shimproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups/fscommon"

	"github.com/boxsup/boxsup/messages"
)

// roleAlloc is a guest that allocates and touches $ALLOC_MIB MiB, then
// sleeps: under a smaller memory limit the OOM killer ends it.
const roleAlloc = "alloc"

// runLimitsHelper runs the helper roles of the limit tests.
func runLimitsHelper(role string) (code int, ok bool) {
	if role != roleAlloc {
		return 0, false
	}
	mib, err := strconv.Atoi(os.Getenv("ALLOC_MIB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2, true
	}
	buf := make([]byte, mib<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	fmt.Println("allocated", mib, "MiB")
	time.Sleep(time.Hour)
	return 0, true
}

// limitsParent is a fresh cgroup parent for one limits test. When the test
// ends it checks that nothing of it is left: not in cgroup v2, not in any
// cgroup v1 hierarchy (the box's handle removes its cgroups first, then
// RemoveCgroupParent removes the parent).
func limitsParent(t *testing.T) string {
	t.Helper()
	parent := fmt.Sprintf("boxsup-test-limits-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		root, ok := CgroupAvailable()
		if !ok {
			return
		}
		dir := filepath.Join(root, parent)
		// The box's own clean-up (Handle.RemoveCgroup) ran first: no box
		// cgroup may be left for RemoveCgroupParent to find.
		for _, d := range append([]string{dir}, v1Mirrors(dir)...) {
			entries, _ := os.ReadDir(d)
			for _, e := range entries {
				if e.IsDir() {
					t.Errorf("box cgroup %s left behind after the box", filepath.Join(d, e.Name()))
				}
			}
		}
		if err := RemoveCgroupParent(parent); err != nil {
			t.Errorf("RemoveCgroupParent: %v", err)
		}
		for _, d := range append([]string{dir}, v1Mirrors(dir)...) {
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup %s left behind (stat: %v)", d, err)
			}
		}
	})
	return parent
}

// requireLimits skips the test unless boxes can get every limit in want.
func requireLimits(t *testing.T, parent string, want ...string) ResourceSupport {
	t.Helper()
	requireCgroup(t)
	rs := SupportedResources(CgroupRequired, parent)
	have := strings.Join(rs.Controllers(), " ")
	for _, ctl := range want {
		if !strings.Contains(have, ctl) {
			t.Skipf("boxes cannot get the %s limit here: %s", ctl, rs.Why)
		}
	}
	return rs
}

// ctlDir returns the directory holding the generation's files of
// controller ctl: its cgroup v2 when the controller is enabled there
// (probe names one of its files), else the v1 mirror.
func ctlDir(t *testing.T, h *Handle, ctl, probe string) (dir string, v1 bool) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(h.CgroupPath(), probe)); err == nil {
		return h.CgroupPath(), false
	}
	mnt, ok := v1Mounts()[ctl]
	if !ok {
		t.Fatalf("no cgroup for the %s controller of %s", ctl, h.CgroupPath())
	}
	m := v1Mirror(mnt, h.CgroupPath())
	if !isDir(m) {
		t.Fatalf("v1 mirror %s of %s missing", m, h.CgroupPath())
	}
	return m, true
}

// readCgroupFile reads one cgroup file, trimmed.
func readCgroupFile(t *testing.T, dir, file string) string {
	t.Helper()
	v, err := fscommon.GetCgroupParamString(dir, file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// memberOfV1 reports whether pid is in the v1 cgroup dir.
func memberOfV1(t *testing.T, dir string, pid int) bool {
	t.Helper()
	pids, err := FindCgroupProcs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

func TestLimitsRefusedWithoutCgroup(t *testing.T) {
	t.Parallel()
	for _, spec := range []func(*messages.InstanceSpec){
		func(s *messages.InstanceSpec) { s.MemoryMiB = 64 },
		func(s *messages.InstanceSpec) { s.CPUMillis = 500 },
		func(s *messages.InstanceSpec) { s.CPUs = 1 },
		func(s *messages.InstanceSpec) { s.Security.MaxProcesses = 50 },
	} {
		box := newBox(t, "nolimits")
		s := guestSpec("/bin/true")
		spec(&s)
		_, err := Start(context.Background(), SpawnRequest{Box: box, Binary: shimBinary, Spec: s, Cgroup: CgroupOff})
		if !errors.Is(err, messages.ErrUnsupported) || !errors.Is(err, messages.ErrBadSpec) {
			t.Fatalf("Start with limits and no cgroup: %v, want ErrUnsupported (and ErrBadSpec)", err)
		}
		if !strings.Contains(err.Error(), "cgroup mode off") {
			t.Errorf("error %q does not say why", err)
		}
		if _, err := os.Stat(box.ShimLogPath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused start left %s behind", box.ShimLogPath())
		}
	}
	if rs := SupportedResources(CgroupOff, ""); rs.CPU || rs.Memory || rs.Pids || rs.Why == "" {
		t.Errorf("SupportedResources(off) = %+v, want nothing, with a reason", rs)
	}
	capped := guestSpec("/bin/true")
	capped.MemoryMiB = 64
	if err := CheckResources(&capped, CgroupOff, ""); !errors.Is(err, messages.ErrUnsupported) {
		t.Errorf("CheckResources(memory_mib, off): %v, want ErrUnsupported", err)
	}
	// A VM engine reads memory_mib as the VM's RAM: the supervisor leaves
	// it to the engine (a cgroup limit of the guest's RAM would kill the
	// VMM).
	capped.Engine = messages.EngineLibkrun
	if err := CheckResources(&capped, CgroupOff, ""); err != nil {
		t.Errorf("CheckResources(libkrun, memory_mib, off): %v, want nil", err)
	}
	if lp, err := planLimits(&capped, "", "", CgroupOff, ""); lp != nil || err != nil {
		t.Errorf("planLimits(libkrun): %+v, %v; want no limits", lp, err)
	}
}

// TestSupportedResourcesNamesTheMissing: every limit is either supported
// or named, with its controller, in Why.
func TestSupportedResourcesNamesTheMissing(t *testing.T) {
	t.Parallel()
	requireCgroup(t)
	rs := SupportedResources(CgroupRequired, "")
	for _, c := range []struct {
		ok  bool
		ctl string
	}{{rs.CPU, "cpu"}, {rs.Memory, "memory"}, {rs.Pids, "pids"}} {
		if !c.ok && !strings.Contains(rs.Why, "cgroup "+c.ctl+" controller") {
			t.Errorf("%s unsupported but Why %q does not name its controller", c.ctl, rs.Why)
		}
	}
	t.Logf("here: %+v", rs)
}

// TestMemoryLimitOOMKilled: a guest that allocates 200 MiB under
// memory_mib 64 is killed by the OOM killer and reported oom-killed; the
// limit (swap off) is in the cgroup files, and nothing is left after.
func TestMemoryLimitOOMKilled(t *testing.T) {
	t.Parallel()
	parent := limitsParent(t)
	requireLimits(t, parent, "memory")
	box := newBox(t, "oom")
	spec := guestSpec(os.Args[0], "-test.run=^$")
	spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, helperRoleEnv+"="+roleAlloc, "ALLOC_MIB=200", noRaceExitSleep)
	spec.MemoryMiB = 64
	h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupRequired, CgroupParent: parent})

	dir, v1 := ctlDir(t, h, "memory", "memory.max")
	limitFile, swapFile, swapWant := "memory.max", "memory.swap.max", "0"
	if v1 {
		limitFile, swapFile, swapWant = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", strconv.Itoa(64<<20)
		if !memberOfV1(t, dir, h.PID()) {
			t.Errorf("the shim %d is not in %s", h.PID(), dir)
		}
	}
	if got := readCgroupFile(t, dir, limitFile); got != strconv.Itoa(64<<20) {
		t.Errorf("%s/%s = %s, want %d", dir, limitFile, got, 64<<20)
	}
	if exists(dir, swapFile) {
		if got := readCgroupFile(t, dir, swapFile); got != swapWant {
			t.Errorf("%s/%s = %s, want %s (no swap)", dir, swapFile, got, swapWant)
		}
	}

	waitExited(t, h, 60*time.Second)
	rec := h.ExitStatus()
	if rec.Reason != messages.ReasonOOMKilled || rec.Signal != "SIGKILL" {
		t.Fatalf("exit %+v, want SIGKILL with reason %q", rec, messages.ReasonOOMKilled)
	}
	if n := h.cgroupFiles().oomKills(); n == 0 {
		t.Errorf("no OOM kill counted")
	}
}

// forkLoop is a guest that forks 200 sleeping children, skipping the forks
// the kernel refuses, then sleeps itself. (A shell would not do: dash and
// bash give up, or retry for seconds, when a fork fails.)
const forkLoop = `my $n = 0;
for (1..200) {
	my $pid = fork;
	next unless defined $pid;
	if ($pid == 0) { sleep 1000; exit 0 }
	$n++;
}
print "forked $n\n";
sleep 1000;`

// TestPidsLimitStopsForkLoop: a fork loop under max_processes 50 stops at
// 50 tasks in the box (pids.current, the shim's threads included), the
// kernel refusing the forks beyond (pids.events max).
func TestPidsLimitStopsForkLoop(t *testing.T) {
	t.Parallel()
	parent := limitsParent(t)
	requireLimits(t, parent, "pids")
	const perl = "/usr/bin/perl"
	if _, err := os.Stat(perl); err != nil {
		t.Skipf("the fork loop guest needs %s: %v", perl, err)
	}
	box := newBox(t, "forkloop")
	spec := guestSpec(perl, "-e", forkLoop)
	spec.Security.MaxProcesses = 50
	h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupRequired, CgroupParent: parent})

	dir, v1 := ctlDir(t, h, "pids", "pids.max")
	if v1 && !memberOfV1(t, dir, h.PID()) {
		t.Errorf("the shim %d is not in %s", h.PID(), dir)
	}
	if got := readCgroupFile(t, dir, "pids.max"); got != "50" {
		t.Errorf("%s/pids.max = %s, want 50", dir, got)
	}
	var cur uint64
	waitFor(t, 30*time.Second, "the fork loop to fill the box to 50 tasks, and forks to be refused", func() bool {
		var err error
		if cur, err = fscommon.GetCgroupParamUint(dir, "pids.current"); err != nil {
			t.Fatal(err)
		}
		if cur > 50 {
			t.Fatalf("pids.current %d above the limit 50", cur)
		}
		refused, err := fscommon.GetValueByKey(dir, "pids.events", "max")
		return err == nil && refused > 0 && cur == 50
	})
	m, err := h.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.PidsLimit != 50 || m.Tasks != 50 || m.Processes < 40 {
		t.Errorf("metrics %+v: want pids_limit 50, 50 tasks, the forked processes", m)
	}
	t.Logf("metrics %+v", m)
}

// TestCPUQuotaHalf: a busy loop under a 0.5 CPU quota gets 0.5 CPU, within
// 10%, over 2 s, measured from the cgroup's CPU usage counter. The upper
// bound is the quota's doing and always checked; the lower bound only
// holds when the box was throttled (it had CPU to spare beyond its quota)
// in nearly every period, which a host busy with other work may prevent.
func TestCPUQuotaHalf(t *testing.T) {
	t.Parallel()
	parent := limitsParent(t)
	requireLimits(t, parent, "cpu")
	box := newBox(t, "cpuquota")
	spec := guestSpec("/bin/sh", "-c", "while :; do :; done")
	spec.CPUMillis = 500
	h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupRequired, CgroupParent: parent})

	dir, v1 := ctlDir(t, h, "cpu", "cpu.max")
	if v1 {
		if !memberOfV1(t, dir, h.PID()) {
			t.Errorf("the shim %d is not in %s", h.PID(), dir)
		}
		if q, p := readCgroupFile(t, dir, "cpu.cfs_quota_us"), readCgroupFile(t, dir, "cpu.cfs_period_us"); q != "50000" || p != "100000" {
			t.Errorf("cfs quota %s / period %s, want 50000 / 100000", q, p)
		}
	} else if got := readCgroupFile(t, dir, "cpu.max"); got != "50000 100000" {
		t.Errorf("cpu.max = %q, want \"50000 100000\"", got)
	}

	cf := h.cgroupFiles()
	throttle := func() (periods, throttled uint64) {
		periods, _ = fscommon.GetValueByKey(dir, "cpu.stat", "nr_periods")
		throttled, _ = fscommon.GetValueByKey(dir, "cpu.stat", "nr_throttled")
		return periods, throttled
	}
	// Let the loop start burning first: the window measures a steady state.
	waitFor(t, 10*time.Second, "the busy loop to be throttled", func() bool {
		_, thr := throttle()
		return thr > 0
	})
	cpu0, err := cf.cpuSeconds()
	if err != nil {
		t.Fatal(err)
	}
	p0, t0 := throttle()
	start := time.Now()
	time.Sleep(2 * time.Second) // the measurement window, not an ordering
	cpu1, err := cf.cpuSeconds()
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start).Seconds()
	p1, t1 := throttle()
	share := (cpu1 - cpu0) / wall
	frac := float64(t1-t0) / float64(max(p1-p0, 1))
	t.Logf("CPU share %.3f over %.2f s; throttled in %d of %d periods", share, wall, t1-t0, p1-p0)
	if share > 0.55 {
		t.Errorf("CPU share %.3f above the quota 0.5 + 10%%", share)
	}
	if share < 0.45 {
		if frac >= 0.9 {
			t.Errorf("CPU share %.3f below the quota 0.5 - 10%% although throttled in %.0f%% of the periods", share, frac*100)
		} else {
			t.Logf("the host was busy (throttled in only %.0f%% of the periods): lower bound not checked", frac*100)
		}
	}
	m, err := h.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.CPUQuotaMillis != 500 || m.CPUSeconds < cpu1 {
		t.Errorf("metrics %+v: want cpu_quota_millis 500 and cpu_seconds ≥ %.3f", m, cpu1)
	}
}

// TestMetricsFromCgroup: a box with a cgroup is sampled from its files:
// the CPU counter grows, and every process of the tree is counted.
func TestMetricsFromCgroup(t *testing.T) {
	t.Parallel()
	requireCgroup(t)
	box := newBox(t, "cgmetrics")
	h := spawnBox(t, SpawnRequest{
		Box: box, Spec: guestSpec("/bin/sh", "-c", "/bin/sleep 1000 & while :; do :; done"),
		Cgroup: CgroupRequired, CgroupParent: testCgroupParent(t),
	})
	var last float64
	waitFor(t, 10*time.Second, "the CPU counter to grow twice", func() bool {
		m, err := h.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if m.CPUSeconds < last {
			t.Fatalf("cpu_seconds went back from %v to %v", last, m.CPUSeconds)
		}
		grew := last > 0 && m.CPUSeconds > last
		last = m.CPUSeconds
		return grew && m.Processes == 3 && m.MemoryBytes > 0
	})
	if h.metrics.procs != nil {
		t.Errorf("the cgroup sampler kept %d per-process samplers", len(h.metrics.procs))
	}
}

// TestLimitsFailedStartLeavesNothing: a box with limits whose guest cannot
// be executed fails to start and leaves no cgroup, v2 or v1.
func TestLimitsFailedStartLeavesNothing(t *testing.T) {
	t.Parallel()
	parent := limitsParent(t)
	requireLimits(t, parent, "memory", "pids", "cpu")
	box := newBox(t, "limitsfail")
	spec := guestSpec("/nonexistent/guest")
	spec.MemoryMiB, spec.CPUMillis, spec.Security.MaxProcesses = 64, 500, 50
	h, err := Spawn(context.Background(), SpawnRequest{
		Box: box, Binary: shimBinary, Spec: spec, ReadyTimeout: 10 * time.Second,
		Cgroup: CgroupRequired, CgroupParent: parent,
	})
	if err == nil {
		cleanupHandle(t, h)
		t.Fatal("Spawn of a guest that does not exist succeeded")
	}
	t.Logf("Spawn: %v", err)
}
