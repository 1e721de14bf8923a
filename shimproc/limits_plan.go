package shimproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	cgroupsv1 "github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"

	"github.com/boxsup/boxsup/messages"
)

// maxPidsLimit is the kernel's PID_MAX_LIMIT: no tree can hold more tasks,
// so a larger max_processes is no pids limit at all (pids.max refuses it).
const maxPidsLimit = 4 * 1024 * 1024

// limitsPlan is a spawn's resource limits and where each is enforced,
// worked out by planSpawn before anything is created.
type limitsPlan struct {
	v2  []string          // controllers whose limits go into the generation's cgroup v2
	v1  map[string]string // controller → the generation's cgroup in its v1 hierarchy
	res cgroups.Resources // the limits (runc's vocabulary)

	swapMust bool // the host swaps: a memory limit without swap accounting is refused
}

// planLimits decides where each limit of spec is enforced for a box whose
// generation cgroup v2 is genDir. A limit that cannot be enforced is
// messages.ErrUnsupported naming the controller: a box never runs without
// a limit it asked for. nil means the spec sets none, or is not for the
// process engine (see enforcedBySupervisor).
func planLimits(spec *messages.InstanceSpec, root, genDir string, mode CgroupMode, parent string) (*limitsPlan, error) {
	if !enforcedBySupervisor(spec) {
		return nil, nil
	}
	millis, memory, pids := spec.CPUQuotaMillis(), spec.MemoryLimitBytes(), spec.PidsLimit()
	if pids >= maxPidsLimit {
		pids = 0
	}
	if millis == 0 && memory == 0 && pids == 0 {
		return nil, nil
	}
	if genDir == "" {
		_, why := limitsRoot(mode, parent)
		return nil, messages.Errorf(messages.ErrUnsupported, "box %s: resource limits (%s) cannot be enforced: %s", spec.BoxID, limitFields(millis, memory, pids), why)
	}
	lp := &limitsPlan{v1: map[string]string{}}
	place := func(ctl, field string) error {
		pl, err := locateController(root, ctl)
		if err != nil {
			return fmt.Errorf("box %s: %s: %w", spec.BoxID, field, err)
		}
		if pl.v1Mount == "" {
			lp.v2 = append(lp.v2, ctl)
		} else {
			lp.v1[ctl] = v1Mirror(pl.v1Mount, genDir)
		}
		return nil
	}
	if millis != 0 {
		if err := place(controllerCPU, "cpu quota"); err != nil {
			return nil, err
		}
		lp.res.CpuQuota = int64(millis) * cpuPeriodMicros / 1000
		lp.res.CpuPeriod = cpuPeriodMicros
	}
	if memory != 0 {
		if err := place(controllerMemory, "memory_mib"); err != nil {
			return nil, err
		}
		lp.res.Memory = int64(memory)
		swap, err := swapActive()
		if err != nil {
			return nil, messages.Errorf(messages.ErrCgroup, "box %s: memory_mib: reading /proc/swaps: %v", spec.BoxID, err)
		}
		lp.swapMust = swap
		if mnt := v1Mounts()[controllerMemory]; lp.v1[controllerMemory] != "" {
			// Swap is limited wherever the kernel accounts it (swap may be
			// turned on later); only a host that swaps now makes its
			// absence a refusal.
			if _, err := os.Stat(filepath.Join(mnt, "memory.memsw.limit_in_bytes")); err == nil {
				lp.res.MemorySwap = lp.res.Memory // memory+swap = memory: no swap
			} else if swap {
				return nil, messages.Errorf(messages.ErrUnsupported,
					"box %s: memory_mib: the host swaps and its memory cgroup has no swap accounting (memory.memsw.*; boot with swapaccount=1), so the box could not be kept off swap", spec.BoxID)
			}
		}
	}
	if pids != 0 {
		if err := place(controllerPids, "max_processes"); err != nil {
			return nil, err
		}
		limit := int64(pids)
		lp.res.PidsLimit = &limit
	}
	return lp, nil
}

// limitFields names the limits set, for an error message.
func limitFields(millis uint32, memory, pids uint64) string {
	var f []string
	if millis != 0 {
		f = append(f, "cpus/cpu_millis")
	}
	if memory != 0 {
		f = append(f, "memory_mib")
	}
	if pids != 0 {
		f = append(f, "max_processes")
	}
	return strings.Join(f, ", ")
}

// apply enforces the limits on a generation's cgroups before its shim is
// spawned: on the cgroup v2 genDir (enabling the controllers from root's
// child down to the box's cgroup first), and on v1 mirrors it creates. It
// returns an undo that removes the v1 cgroups it made. On error nothing it
// made is left.
func (lp *limitsPlan) apply(root, genDir string) (undo func(), err error) {
	if len(lp.v2) > 0 {
		if err := enableV2Controllers(root, filepath.Dir(genDir), lp.v2); err != nil {
			return nil, err
		}
		if err := lp.setV2(genDir); err != nil {
			return nil, err
		}
	}
	var created []string
	undo = func() { removeV1Created(created) }
	for _, ctl := range v1Controllers {
		dir := lp.v1[ctl]
		if dir == "" {
			continue
		}
		made, err := createV1Cgroup(dir)
		created = append(created, made...)
		if err == nil {
			err = lp.setV1(ctl, dir)
		}
		if err != nil {
			undo()
			return nil, err
		}
	}
	return undo, nil
}

// setV2 writes the v2 part of the limits into genDir: cpu.max, memory.max
// with memory.swap.max 0, pids.max.
func (lp *limitsPlan) setV2(genDir string) error {
	var r cgroups.Resources
	if slices.Contains(lp.v2, controllerCPU) {
		r.CpuQuota, r.CpuPeriod = lp.res.CpuQuota, lp.res.CpuPeriod
	}
	if slices.Contains(lp.v2, controllerMemory) {
		r.Memory = lp.res.Memory
		// Swap is limited wherever the kernel accounts it (swap may be
		// turned on later); only a host that swaps now makes its absence a
		// refusal.
		if _, err := os.Stat(filepath.Join(genDir, "memory.swap.max")); err == nil {
			r.MemorySwap = r.Memory // memory+swap = memory: swap.max 0
		} else if lp.swapMust {
			return messages.Errorf(messages.ErrUnsupported,
				"the host swaps and %s has no memory.swap.max (no swap accounting), so the box could not be kept off swap", genDir)
		}
	}
	if slices.Contains(lp.v2, controllerPids) {
		r.PidsLimit = lp.res.PidsLimit
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: &r}, genDir)
	if err == nil {
		err = m.Set(&r)
	}
	if err != nil {
		return messages.Errorf(messages.ErrCgroup, "setting the limits of %s: %v", genDir, err)
	}
	return nil
}

// setV1 writes controller ctl's limit into its v1 cgroup dir.
func (lp *limitsPlan) setV1(ctl, dir string) error {
	var err error
	switch ctl {
	case controllerCPU:
		r := cgroups.Resources{CpuQuota: lp.res.CpuQuota, CpuPeriod: lp.res.CpuPeriod}
		err = (&cgroupsv1.CpuGroup{}).Set(dir, &r)
	case controllerMemory:
		r := cgroups.Resources{Memory: lp.res.Memory, MemorySwap: lp.res.MemorySwap}
		err = (&cgroupsv1.MemoryGroup{}).Set(dir, &r)
	case controllerPids:
		r := cgroups.Resources{PidsLimit: lp.res.PidsLimit}
		err = (&cgroupsv1.PidsGroup{}).Set(dir, &r)
	}
	if err != nil {
		return messages.Errorf(messages.ErrCgroup, "setting the %s limit of %s: %v", ctl, dir, err)
	}
	return nil
}

// joinV1 moves the freshly spawned shim into the v1 cgroups, before it is
// handed its spec: everything it forks later is born inside.
func (lp *limitsPlan) joinV1(pid int) error {
	for _, ctl := range v1Controllers {
		if dir := lp.v1[ctl]; dir != "" {
			if err := joinV1(dir, pid); err != nil {
				return err
			}
		}
	}
	return nil
}

// enableV2Controllers makes ctls available to the generation cgroups under
// boxDir: each cgroup from root's child down to boxDir gets "+ctl" in its
// cgroup.subtree_control where it is not enabled yet. root itself must
// already delegate them (locateController).
func enableV2Controllers(root, boxDir string, ctls []string) error {
	rel, ok := strings.CutPrefix(boxDir, root+"/")
	if !ok {
		return messages.Errorf(messages.ErrCgroup, "%s is not under %s", boxDir, root)
	}
	dir := root
	for _, part := range strings.Split(rel, "/") {
		dir = filepath.Join(dir, part)
		cur, err := cgroups.ReadFile(dir, "cgroup.subtree_control")
		if err != nil {
			return messages.Errorf(messages.ErrCgroup, "reading %s/cgroup.subtree_control: %v", dir, err)
		}
		enabled := strings.Fields(cur)
		var add []string
		for _, ctl := range ctls {
			if !slices.Contains(enabled, ctl) {
				add = append(add, "+"+ctl)
			}
		}
		if len(add) == 0 {
			continue
		}
		if err := cgroups.WriteFile(dir, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w (the controller is not available there)", err)
			}
			return messages.Errorf(messages.ErrCgroup, "enabling %s in %s/cgroup.subtree_control: %v", strings.Join(add, " "), dir, err)
		}
	}
	return nil
}
