package shimproc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"

	"github.com/boxsup/boxsup/messages"
)

// The cgroup controllers a box's resource limits need.
const (
	controllerCPU    = "cpu"    // cpu.max / cpu.cfs_quota_us: the CPU quota
	controllerMemory = "memory" // memory.max / memory.limit_in_bytes
	controllerPids   = "pids"   // pids.max
)

// cpuPeriodMicros is the CFS period of a box's CPU quota: the kernel's
// default, as runc and systemd use.
const cpuPeriodMicros = 100_000

// ResourceSupport says which resource limits a supervisor can enforce on its
// boxes right now, and, for those it cannot, why (naming the missing cgroup
// controller). Each limit is enforced through the box's cgroup v2 where the
// controller is enabled for the home's subtree, else through a cgroup v1
// hierarchy of that controller (a hybrid host). A spec asking for a limit
// that cannot be enforced is refused with messages.ErrUnsupported.
type ResourceSupport struct {
	CPU    bool // cpus / cpu_millis: a CPU quota
	Memory bool // memory_mib: a memory limit with swap off
	Pids   bool // security.max_processes: a limit on the tree's tasks
	// Why explains, in one line, each limit that cannot be enforced ("" when
	// all can).
	Why string
}

// Controllers returns the cgroup controllers ("cpu", "memory", "pids")
// through which limits can be enforced.
func (r ResourceSupport) Controllers() []string {
	var out []string
	for _, c := range []struct {
		ok   bool
		name string
	}{{r.CPU, controllerCPU}, {r.Memory, controllerMemory}, {r.Pids, controllerPids}} {
		if c.ok {
			out = append(out, c.name)
		}
	}
	return out
}

// SupportedResources reports which resource limits boxes spawned with this
// cgroup mode and parent (SpawnRequest.Cgroup, CgroupParent) can get right
// now, so that a capability check can refuse a spec before anything is
// created. It creates nothing; Start checks again for each spawn.
func SupportedResources(mode CgroupMode, parent string) ResourceSupport {
	root, reason := limitsRoot(mode, parent)
	if reason != "" {
		return ResourceSupport{Why: reason}
	}
	var rs ResourceSupport
	var why []string
	for _, c := range []struct {
		ok   *bool
		name string
	}{{&rs.CPU, controllerCPU}, {&rs.Memory, controllerMemory}, {&rs.Pids, controllerPids}} {
		if _, err := locateController(root, c.name); err != nil {
			why = append(why, err.Error())
			continue
		}
		*c.ok = true
	}
	rs.Why = strings.Join(why, "; ")
	return rs
}

// limitsRoot returns the cgroup v2 root under which boxes with this mode and
// parent get their cgroup, or why they get none: limits need the box's
// cgroup v2, which tracks the tree and mirrors into the v1 hierarchies.
func limitsRoot(mode CgroupMode, parent string) (root, why string) {
	if parent == "" {
		parent = DefaultCgroupParent
	}
	if err := validCgroupParent(parent); err != nil {
		return "", err.Error()
	}
	if mode == CgroupOff {
		return "", "boxes get no cgroup (cgroup mode off), and resource limits are enforced on the box's cgroup"
	}
	root, ok := CgroupAvailable()
	if !ok {
		return "", fmt.Sprintf("no writable cgroup v2 hierarchy at %s or %s, where boxsup tracks a box's tree and anchors its limits", cgroupRoots[0], cgroupRoots[1])
	}
	return root, ""
}

// controllerPlace says where a controller is enforced: in the box's cgroup
// v2 (v1Mount empty), or in a cgroup v1 hierarchy mounted at v1Mount.
type controllerPlace struct {
	name    string
	v1Mount string
}

// locateController finds where controller name can be used for boxes under
// the cgroup v2 root: in v2 when root delegates it to its children (it is in
// root's cgroup.subtree_control; boxsup then enables it down to the box's
// cgroup), else in a writable v1 hierarchy of its own. Neither is a
// messages.ErrUnsupported naming the controller.
func locateController(root, name string) (controllerPlace, error) {
	if v2Delegated(root, name) {
		return controllerPlace{name: name}, nil
	}
	if mnt, ok := v1Mounts()[name]; ok {
		if err := v1Writable(mnt); err != nil {
			return controllerPlace{}, messages.Errorf(messages.ErrUnsupported, "the cgroup %s controller: its v1 hierarchy %s is not writable (%v)", name, mnt, err)
		}
		return controllerPlace{name: name, v1Mount: mnt}, nil
	}
	return controllerPlace{}, messages.Errorf(messages.ErrUnsupported,
		"the cgroup %s controller is neither enabled in %s/cgroup.subtree_control (cgroup v2) nor mounted as a cgroup v1 hierarchy", name, root)
}

// v2Delegated reports whether root hands controller name to its children.
func v2Delegated(root, name string) bool {
	raw, err := cgroups.ReadFile(root, "cgroup.subtree_control")
	return err == nil && slices.Contains(strings.Fields(raw), name)
}

// swapActive reports whether the host has any swap space in use (a line
// past the header of /proc/swaps). Without it a box cannot swap, whatever
// its cgroup says.
func swapActive() (bool, error) {
	raw, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	lines := 0
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			lines++
		}
	}
	return lines > 1, sc.Err()
}

// enforcedBySupervisor reports whether the supervisor enforces the spec's
// resource fields on the box cgroup: for the process engine, whose guest is
// a plain process. A VM engine reads cpus and memory_mib as the VM's shape
// (a memory limit of the guest's RAM would OOM-kill the VMM) and honours or
// refuses them itself.
func enforcedBySupervisor(spec *messages.InstanceSpec) bool {
	return spec.Engine == messages.EngineProcess || spec.Engine == ""
}

// CheckResources refuses, before anything is created, a spec whose
// resource limits boxes of this cgroup mode and parent cannot get right now
// (messages.ErrUnsupported, also messages.ErrBadSpec, naming the field and
// the missing controller). It creates nothing; Start checks again.
func CheckResources(spec *messages.InstanceSpec, mode CgroupMode, parent string) error {
	if !enforcedBySupervisor(spec) || !spec.HasResourceLimits() {
		return nil
	}
	root, why := limitsRoot(mode, parent)
	if why != "" {
		return messages.Errorf(messages.ErrUnsupported, "resource limits cannot be enforced: %s", why)
	}
	for _, need := range []struct {
		set        bool
		field, ctl string
	}{
		{spec.CPUQuotaMillis() != 0, "cpus/cpu_millis", controllerCPU},
		{spec.MemoryMiB != 0, "memory_mib", controllerMemory},
		{spec.PidsLimit() != 0 && spec.PidsLimit() < maxPidsLimit, "security.max_processes", controllerPids},
	} {
		if !need.set {
			continue
		}
		if _, err := locateController(root, need.ctl); err != nil {
			return fmt.Errorf("%s: %w", need.field, err)
		}
	}
	return nil
}
