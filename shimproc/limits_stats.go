package shimproc

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"
)

// cgroupFiles says where a generation's accounting and limit files are:
// its cgroup v2 (CPU time, members, and whatever controllers are enabled
// there) and, on a hybrid host, the v1 mirrors that limits created. It is
// worked out once per handle; the limits it holds are set at the spawn and
// never changed.
type cgroupFiles struct {
	v2     string // the generation's cgroup v2: cpu.stat, cgroup.procs
	memory string // holds memory.current (v2) or memory.usage_in_bytes (v1); "" none
	memV1  bool
	pids   string // holds pids.current; "" none

	memLimit  uint64 // bytes; 0 none
	pidsLimit uint64 // 0 none
	cpuMillis uint32 // 0 none
}

// unlimitedV1 is where cgroup v1 counters say "no limit" (they print
// PAGE_COUNTER_MAX in bytes, just below 2^63).
const unlimitedV1 = 1 << 62

// resolveCgroupFiles finds the accounting files of the generation cgroup
// dir and reads its limits.
func resolveCgroupFiles(dir string) *cgroupFiles {
	cf := &cgroupFiles{v2: dir}
	mirror := func(ctl string) string {
		if mnt, ok := v1Mounts()[ctl]; ok {
			if m := v1Mirror(mnt, dir); m != "" && isDir(m) {
				return m
			}
		}
		return ""
	}
	switch {
	case exists(dir, "memory.current"):
		cf.memory = dir
		cf.memLimit = limitValue(dir, "memory.max")
	default:
		if m := mirror(controllerMemory); m != "" {
			cf.memory, cf.memV1 = m, true
			cf.memLimit = limitValue(m, "memory.limit_in_bytes")
		}
	}
	switch {
	case exists(dir, "pids.current"):
		cf.pids = dir
	default:
		cf.pids = mirror(controllerPids)
	}
	if cf.pids != "" {
		cf.pidsLimit = limitValue(cf.pids, "pids.max")
	}
	switch {
	case exists(dir, "cpu.max"):
		cf.cpuMillis = cpuMaxMillis(dir)
	default:
		if m := mirror(controllerCPU); m != "" {
			cf.cpuMillis = cfsQuotaMillis(m)
		}
	}
	return cf
}

// cpuSeconds returns the generation's CPU time (user+system, all its
// processes, living or gone) from the cgroup v2 cpu.stat, present in every
// cgroup whether or not the cpu controller is enabled.
func (cf *cgroupFiles) cpuSeconds() (float64, error) {
	usec, err := cgroupValue(cf.v2, "cpu.stat", "usage_usec")
	return float64(usec) / 1e6, err
}

// memoryBytes returns the memory charged to the box's memory cgroup, and
// false when it has none.
func (cf *cgroupFiles) memoryBytes() (uint64, bool) {
	if cf.memory == "" {
		return 0, false
	}
	file := "memory.current"
	if cf.memV1 {
		file = "memory.usage_in_bytes"
	}
	v, err := fscommon.GetCgroupParamUint(cf.memory, file)
	return v, err == nil
}

// tasks returns pids.current, or 0 without a pids cgroup.
func (cf *cgroupFiles) tasks() uint64 {
	if cf.pids == "" {
		return 0
	}
	v, _ := fscommon.GetCgroupParamUint(cf.pids, "pids.current")
	return v
}

// oomKills returns how many processes of the generation the OOM killer
// killed (memory.events oom_kill in v2, memory.oom_control oom_kill in v1),
// or 0 when the box has no memory cgroup or the kernel does not say.
func (cf *cgroupFiles) oomKills() uint64 {
	if cf.memory == "" {
		return 0
	}
	file := "memory.events"
	if cf.memV1 {
		file = "memory.oom_control"
	}
	v, _ := fscommon.GetValueByKey(cf.memory, file, "oom_kill")
	return v
}

// limitValue reads a limit file: "max" (v2) or a v1 "unlimited" value is
// 0, no limit.
func limitValue(dir, file string) uint64 {
	v, err := fscommon.GetCgroupParamUint(dir, file)
	if err != nil || v == math.MaxUint64 || v >= unlimitedV1 {
		return 0
	}
	return v
}

// cpuMaxMillis reads cpu.max ("max 100000" or "50000 100000") as
// thousandths of a CPU.
func cpuMaxMillis(dir string) uint32 {
	raw, err := cgroups.ReadFile(dir, "cpu.max")
	if err != nil {
		return 0
	}
	quota, period, ok := strings.Cut(strings.TrimSpace(raw), " ")
	if !ok {
		return 0
	}
	q, err1 := strconv.ParseUint(quota, 10, 64)
	p, err2 := strconv.ParseUint(period, 10, 64)
	if err1 != nil || err2 != nil || p == 0 {
		return 0
	}
	return uint32(q * 1000 / p)
}

// cfsQuotaMillis reads cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us
// as thousandths of a CPU.
func cfsQuotaMillis(dir string) uint32 {
	q, err := fscommon.GetCgroupParamInt(dir, "cpu.cfs_quota_us")
	if err != nil || q <= 0 {
		return 0
	}
	p, err := fscommon.GetCgroupParamUint(dir, "cpu.cfs_period_us")
	if err != nil || p == 0 {
		return 0
	}
	return uint32(uint64(q) * 1000 / p)
}

// rssBytes reads a process's resident set from /proc/PID/statm (its second
// field, in pages); a process gone meanwhile gives false.
func rssBytes(pid int) (uint64, bool) {
	raw, err := readKernelFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(raw)
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// exists reports whether dir/file exists.
func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// isDir reports whether path is an existing directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
