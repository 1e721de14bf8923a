package messages

// Resource limits of a box. For the process engine they are enforced by the
// supervisor on the box's cgroup, not by the shim (docs/RESOURCES.md):
//
//   - a CPU quota: CPUMillis, else CPUs whole CPUs (CPUQuotaMillis);
//   - a memory limit of MemoryMiB, with swap off for the box;
//   - a limit of Security.MaxProcesses tasks (pids.max) for the whole tree,
//     on top of the guest's RLIMIT_NPROC.
//
// A VM engine reads CPUs and MemoryMiB as the VM's shape.

// MinCPUMillis is the smallest CPU quota a spec may ask for: one
// millisecond of CPU per 100 ms period, the kernel's minimum quota.
const MinCPUMillis = 10

// MaxCPUMillis bounds cpu_millis: 1024 CPUs.
const MaxCPUMillis = 1024 * 1000

// ReasonOOMKilled is the exit reason of a box whose guest was killed by
// the kernel's OOM killer under the box's memory limit.
const ReasonOOMKilled = "oom-killed"

// CPUQuotaMillis returns the CPU quota the spec asks for, in thousandths of
// a CPU: cpu_millis when set, else cpus × 1000, else 0 (no quota). cpus
// stays a whole number for compatibility with the VM engines, which read
// it as a vCPU count; cpu_millis carries fractions (`--cpus 0.5`).
func (s *InstanceSpec) CPUQuotaMillis() uint32 {
	if s.CPUMillis != 0 {
		return s.CPUMillis
	}
	return uint32(s.CPUs) * 1000
}

// MemoryLimitBytes returns the memory limit the spec asks for, in bytes (0:
// none).
func (s *InstanceSpec) MemoryLimitBytes() uint64 { return uint64(s.MemoryMiB) << 20 }

// PidsLimit returns the limit on the tasks of the box's tree (0: none).
func (s *InstanceSpec) PidsLimit() uint64 { return s.Security.MaxProcesses }

// HasResourceLimits reports whether the spec sets any resource limit.
func (s *InstanceSpec) HasResourceLimits() bool {
	return s.CPUQuotaMillis() != 0 || s.MemoryMiB != 0 || s.PidsLimit() != 0
}

func (s *InstanceSpec) validateCPUMillis() error {
	if s.CPUMillis != 0 && (s.CPUMillis < MinCPUMillis || s.CPUMillis > MaxCPUMillis) {
		return Errorf(ErrBadSpec, "cpu_millis: %d is outside [%d, %d] (thousandths of a CPU)", s.CPUMillis, MinCPUMillis, MaxCPUMillis)
	}
	return nil
}
