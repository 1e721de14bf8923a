package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/boxsup/boxsup/messages"
)

// resourceFlags are boxsup run's resource limits, named as docker run names
// them. For the process engine they are enforced on the box's cgroup; a
// limit boxsup cannot enforce there is refused (docs/RESOURCES.md).
type resourceFlags struct {
	cpus      string // "0.5", "2"
	memory    string // "64m", "1g", "512" (MiB)
	pidsLimit uint64
}

func (r *resourceFlags) register(f *pflag.FlagSet) {
	f.StringVar(&r.cpus, "cpus", "", "CPU quota in CPUs, e.g. 0.5 or 2 (a VM engine's vCPU count when whole)")
	f.StringVar(&r.memory, "memory", "", "memory limit, e.g. 64m or 1g (a bare number is MiB), swap off; a VM engine's RAM")
	f.Uint64Var(&r.pidsLimit, "pids-limit", 0, "limit on the box's tasks (processes and threads, the box runner's included)")
}

// apply sets the spec's resource fields from the flags. A whole --cpus N
// sets cpus (the field every engine reads); a fraction sets cpu_millis.
func (r *resourceFlags) apply(spec *messages.InstanceSpec) error {
	if r.cpus != "" {
		cpus, millis, err := parseCPUs(r.cpus)
		if err != nil {
			return err
		}
		spec.CPUs, spec.CPUMillis = cpus, millis
	}
	if r.memory != "" {
		mib, err := parseMemoryMiB(r.memory)
		if err != nil {
			return err
		}
		spec.MemoryMiB = mib
	}
	if r.pidsLimit != 0 {
		if cur := spec.Security.MaxProcesses; cur != 0 && cur != r.pidsLimit {
			return messages.Errorf(messages.ErrBadSpec, "--pids-limit %d: max_processes is already %d (one limit serves both)", r.pidsLimit, cur)
		}
		spec.Security.MaxProcesses = r.pidsLimit
	}
	return nil
}

// parseCPUs reads --cpus: a whole number up to 255 becomes cpus, anything
// else (0.5, 1.25, 300) cpu_millis, to the thousandth of a CPU.
func parseCPUs(s string) (cpus uint8, millis uint32, err error) {
	v, perr := strconv.ParseFloat(s, 64)
	if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return 0, 0, messages.Errorf(messages.ErrBadSpec, "--cpus %q: want a positive number of CPUs, e.g. 0.5", s)
	}
	m := math.Round(v * 1000)
	if m < messages.MinCPUMillis || m > messages.MaxCPUMillis {
		return 0, 0, messages.Errorf(messages.ErrBadSpec, "--cpus %q: want between %.2f and %d CPUs", s, float64(messages.MinCPUMillis)/1000, messages.MaxCPUMillis/1000)
	}
	if m == math.Trunc(v)*1000 && v <= math.MaxUint8 {
		return uint8(v), 0, nil
	}
	return 0, uint32(m), nil
}

// parseMemoryMiB reads --memory: a number with an optional unit (b, k, m, g;
// a bare number is MiB, as this flag always took), which must come to a
// whole number of MiB.
func parseMemoryMiB(s string) (uint32, error) {
	num, unit := strings.ToLower(s), uint64(1)<<20
	for suffix, u := range map[string]uint64{"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30} {
		if n, ok := strings.CutSuffix(num, suffix); ok && n != "" && n[len(n)-1] >= '0' && n[len(n)-1] <= '9' {
			num, unit = n, u
			break
		}
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v == 0 {
		return 0, messages.Errorf(messages.ErrBadSpec, "--memory %q: want a size such as 64m or 1g", s)
	}
	if v > math.MaxUint64/unit {
		return 0, messages.Errorf(messages.ErrBadSpec, "--memory %q: too large", s)
	}
	bytes := v * unit
	if bytes%(1<<20) != 0 || bytes>>20 > math.MaxUint32 {
		return 0, messages.Errorf(messages.ErrBadSpec, "--memory %q: must be a whole number of MiB", s)
	}
	return uint32(bytes >> 20), nil
}
