package shimproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/boxsup/boxsup/messages"
)

// maxTreeSize bounds a process-tree walk (a fork bomb must not make a metrics
// sample unbounded).
const maxTreeSize = 100_000

// enableBootTimeCache turns on gopsutil's boot time cache once: without it
// every sample re-reads /proc/stat for each process.
var enableBootTimeCache = sync.OnceFunc(func() { process.EnableBootTimeCache(true) })

// metricsState is what Metrics keeps between samples: one gopsutil Process per
// pid of the tree (fresh ones cost ~4x more per sample) and the previous
// sample's time, the start of the CPU window.
type metricsState struct {
	procs  map[int]*sampledProc
	lastAt time.Time

	// cpuSecs is the tree's CPU time at the last sample: the cgroup's
	// counter, or (walking the tree) the sum of the windows sampled so far.
	cpuSecs float64

	disk   uint64    // last walk of the box directory
	diskAt time.Time // when it was taken
}

// diskRefresh is how long a box directory's measured size is reused. Walking
// the directory was about a third of a Metrics call's CPU, and disk usage does
// not need per-scrape freshness.
const diskRefresh = 5 * time.Second

// diskBytes returns the box directory's size, walking it at most once per
// diskRefresh. The caller holds metricsMu.
func (h *Handle) diskBytes(now time.Time) uint64 {
	if h.metrics.diskAt.IsZero() || now.Sub(h.metrics.diskAt) >= diskRefresh {
		h.metrics.disk = dirSize(h.box.Dir)
		h.metrics.diskAt = now
	}
	return h.metrics.disk
}

// sampledProc is one process of the tree and its CPU time at the last sample.
type sampledProc struct {
	proc    *process.Process
	start   time.Time
	cpuSecs float64 // user+system at the last sample; <0 before the first
}

// Metrics samples the box's whole tree. Where the box has a cgroup it reads
// a few files of it (cpu.stat, the memory and pids controllers' counters
// and limits, memory events): O(1) files per box whatever the tree's size.
// Otherwise, or when the cgroup cannot be read, it walks the tree: the
// cgroup's members, else the shim and its descendants.
//
// CPUPercent is the tree's CPU time since the previous call (the first
// call: since the shim started) over the wall time, ×100, so one busy core
// reads 100; CPUSeconds is the CPU time as a counter (from the cgroup, the
// CPU time of every process the generation ran; walking, the sum of the
// windows sampled). MemoryBytes is the memory cgroup's usage, else the sum
// of RSS. DiskBytes is the size of the box directory (re-measured at most
// every 5 s), Uptime counts from the shim's start. After the exit it
// returns an error wrapping ErrGone.
func (h *Handle) Metrics() (messages.BoxMetrics, error) {
	if h.hasExited() {
		return messages.BoxMetrics{}, fmt.Errorf("metrics of box %s: %w", h.box.ID, ErrGone)
	}
	if cf := h.cgroupFiles(); cf != nil {
		m, err := h.cgroupMetrics(cf)
		if err == nil || errors.Is(err, ErrGone) {
			return m, err
		}
		// An unreadable cgroup: the walk below still gives a sample.
	}
	return h.treeMetrics()
}

// cgroupFiles returns where the generation's cgroup files are, or nil when
// the box has no cgroup.
func (h *Handle) cgroupFiles() *cgroupFiles {
	if h.cgroup == "" {
		return nil
	}
	h.cgFilesOnce.Do(func() { h.cgFiles = resolveCgroupFiles(h.cgroup) })
	return h.cgFiles
}

// cgroupMetrics samples the box from its cgroup's files.
func (h *Handle) cgroupMetrics(cf *cgroupFiles) (messages.BoxMetrics, error) {
	pids, err := FindCgroupProcs(cf.v2)
	if err != nil {
		return messages.BoxMetrics{}, err
	}
	if len(pids) == 0 {
		return messages.BoxMetrics{}, fmt.Errorf("metrics of box %s: %w", h.box.ID, ErrGone)
	}
	cpu, err := cf.cpuSeconds()
	if err != nil {
		return messages.BoxMetrics{}, err
	}
	mem, ok := cf.memoryBytes()
	if !ok {
		for _, pid := range pids {
			rss, _ := rssBytes(pid)
			mem += rss
		}
	}

	h.metricsMu.Lock()
	defer h.metricsMu.Unlock()
	now := time.Now()
	windowStart := h.metrics.lastAt
	if windowStart.IsZero() {
		windowStart = h.startedAt
	}
	percent := cpuPercent(cpu-h.metrics.cpuSecs, now.Sub(windowStart))
	h.metrics.cpuSecs, h.metrics.lastAt, h.metrics.procs = cpu, now, nil
	return messages.BoxMetrics{
		ID:               h.box.ID,
		PID:              h.pid,
		CPUPercent:       percent,
		CPUSeconds:       cpu,
		MemoryBytes:      mem,
		Processes:        len(pids),
		Tasks:            cf.tasks(),
		DiskBytes:        h.diskBytes(now),
		Uptime:           now.Sub(h.startedAt),
		SampledAt:        now,
		MemoryLimitBytes: cf.memLimit,
		PidsLimit:        cf.pidsLimit,
		CPUQuotaMillis:   cf.cpuMillis,
		OOMKills:         cf.oomKills(),
	}, nil
}

// cpuPercent turns CPU seconds spent over a wall time into a percentage of
// one CPU, bounded by the machine's CPUs.
func cpuPercent(cpuSecs float64, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return min(max(cpuSecs/wall.Seconds()*100, 0), float64(100*runtime.NumCPU()))
}

// treeMetrics samples the box by walking its processes with gopsutil.
func (h *Handle) treeMetrics() (messages.BoxMetrics, error) {
	enableBootTimeCache()
	pids := h.treePIDs()

	h.metricsMu.Lock()
	defer h.metricsMu.Unlock()
	now := time.Now()
	windowStart := h.metrics.lastAt
	if windowStart.IsZero() {
		windowStart = h.startedAt
	}
	var cpuSecs float64
	var rss uint64
	next := make(map[int]*sampledProc, len(pids))
	for _, pid := range pids {
		sp := h.metrics.procs[pid]
		if sp == nil {
			if sp = newSampledProc(pid); sp == nil {
				continue // exited meanwhile
			}
		}
		times, err := sp.proc.Times()
		if err != nil {
			continue
		}
		mem, err := sp.proc.MemoryInfo()
		if err != nil {
			continue
		}
		total := times.User + times.System
		cpuSecs += sp.cpuInWindow(total, windowStart, now)
		sp.cpuSecs = total
		next[pid] = sp
		rss += mem.RSS
	}
	if len(next) == 0 {
		return messages.BoxMetrics{}, fmt.Errorf("metrics of box %s: %w", h.box.ID, ErrGone)
	}
	h.metrics.procs, h.metrics.lastAt = next, now
	h.metrics.cpuSecs += cpuSecs

	return messages.BoxMetrics{
		ID:          h.box.ID,
		PID:         h.pid,
		CPUPercent:  cpuPercent(cpuSecs, now.Sub(windowStart)),
		CPUSeconds:  h.metrics.cpuSecs,
		MemoryBytes: rss,
		Processes:   len(next),
		DiskBytes:   h.diskBytes(now),
		Uptime:      now.Sub(h.startedAt),
		SampledAt:   now,
	}, nil
}

// newSampledProc starts tracking pid, or returns nil when it is gone.
func newSampledProc(pid int) *sampledProc {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return nil
	}
	createMillis, err := p.CreateTime()
	if err != nil {
		return nil
	}
	return &sampledProc{proc: p, start: time.UnixMilli(createMillis), cpuSecs: -1}
}

// cpuInWindow returns the CPU seconds the process spent in [windowStart, now].
// A process seen before contributes its delta. A new one contributes all of
// its CPU time if it started inside the window, else the window's share of it
// (an estimate: its CPU time is spread evenly over its life). A negative
// delta means the pid now names another process (recycled): count it as new.
func (sp *sampledProc) cpuInWindow(total float64, windowStart, now time.Time) float64 {
	if sp.cpuSecs >= 0 && total >= sp.cpuSecs {
		return total - sp.cpuSecs
	}
	if !sp.start.Before(windowStart) {
		return total
	}
	life := now.Sub(sp.start).Seconds()
	if life <= 0 {
		return total
	}
	return total * now.Sub(windowStart).Seconds() / life
}

// treePIDs lists the box's processes: the cgroup's members when there is a
// cgroup, else the shim and its descendants.
func (h *Handle) treePIDs() []int {
	if h.cgroup != "" {
		if pids, err := FindCgroupProcs(h.cgroup); err == nil && len(pids) > 0 {
			return pids
		}
	}
	return descendants(h.pid)
}

// descendants returns root and every process below it, walking
// /proc/PID/task/TID/children (breadth first).
func descendants(root int) []int {
	if _, err := os.Stat("/proc/" + strconv.Itoa(root)); err != nil {
		return nil
	}
	out := []int{root}
	seen := map[int]bool{root: true}
	for i := 0; i < len(out) && len(out) < maxTreeSize; i++ {
		taskDir := "/proc/" + strconv.Itoa(out[i]) + "/task"
		tasks, err := os.ReadDir(taskDir)
		if err != nil {
			continue // exited meanwhile
		}
		for _, task := range tasks {
			raw, err := os.ReadFile(taskDir + "/" + task.Name() + "/children")
			if err != nil {
				continue
			}
			for _, field := range strings.Fields(string(raw)) {
				if pid, err := strconv.Atoi(field); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
		}
	}
	return out
}

// dirSize sums the sizes of the regular files below dir (files vanishing
// during the walk are skipped).
func dirSize(dir string) uint64 {
	var total uint64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			// Vanished or unreadable entries are skipped (a sample is best
			// effort); directories are descended into.
			return nil
		}
		if info, err := d.Info(); err == nil {
			total += uint64(info.Size())
		}
		return nil
	})
	return total
}
