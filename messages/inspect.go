package messages

import "slices"

// BoxInspect is everything known about one box (boxsup inspect): its status
// as its supervisor sees it, what its files on disk say, and where its
// files, cgroup and limits are. Spec is a redacted copy: every secret value
// in it is Redacted. A file that could not be read (missing, damaged,
// refused as unsafe) is reported in the matching error field instead of
// failing the whole inspection.
type BoxInspect struct {
	ID     string    `json:"id"`
	Status BoxStatus `json:"status"`
	// Record is the box's state.json as it is on disk: the shim's identity
	// (pid, start time, boot id), its generation's cgroup, the last exit.
	Record      *StateRecord `json:"record,omitempty"`
	RecordError *Error       `json:"record_error,omitempty"`
	// Spec is the box's spec.json (StartBox.Redacted): what it runs, its
	// supervision settings as stored, its isolation and resources.
	Spec      *StartBox `json:"spec,omitempty"`
	SpecError *Error    `json:"spec_error,omitempty"`
	// Cgroup is the cgroup v2 directory of the box's current (or last)
	// generation, as recorded before its shim was spawned; empty when the
	// box has none.
	Cgroup string `json:"cgroup,omitempty"`
	// Limits are the limits the spec asks for; Enforced, those in force on
	// the live box's cgroup (nil when the box is not live or has no
	// cgroup for them; EnforcedError says why it could not be read).
	Limits        Limits  `json:"limits"`
	Enforced      *Limits `json:"enforced,omitempty"`
	EnforcedError *Error  `json:"enforced_error,omitempty"`
	// Paths are where the box's files are.
	Paths BoxPaths `json:"paths"`
}

// Limits are a box's CPU, memory and task limits (0: none).
type Limits struct {
	// CPUMillis is the CPU quota in thousandths of a CPU (spec cpu_millis,
	// else cpus × 1000).
	CPUMillis   uint32 `json:"cpu_millis,omitempty"`
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	// Pids bounds the box's tasks (spec security.max_processes).
	Pids uint64 `json:"pids,omitempty"`
}

// SpecLimits returns the limits spec asks for.
func SpecLimits(spec *InstanceSpec) Limits {
	return Limits{CPUMillis: spec.CPUQuotaMillis(), MemoryBytes: spec.MemoryLimitBytes(), Pids: spec.PidsLimit()}
}

// BoxPaths are the files and directories of one box.
type BoxPaths struct {
	Home       string `json:"home"`
	Dir        string `json:"dir"`
	Spec       string `json:"spec"`
	State      string `json:"state"`
	Exit       string `json:"exit"`
	ConsoleLog string `json:"console_log"`
	ShimLog    string `json:"shim_log"`
	Sockets    string `json:"sockets"`
}

// Redacted returns a copy of s in which every secret value reads Redacted
// (an empty one stays empty): what may be shown to a person. s itself is
// not changed; the copy shares nothing with it that Redacted changes.
func (s *InstanceSpec) Redacted() InstanceSpec {
	out := *s
	out.Secrets = slices.Clone(s.Secrets)
	for i := range out.Secrets {
		out.Secrets[i].Value = redactSecret(out.Secrets[i].Value)
	}
	if s.NetworkConfig != nil {
		nc := *s.NetworkConfig
		nc.CAKeyPEM = redactSecret(nc.CAKeyPEM)
		out.NetworkConfig = &nc
	}
	return out
}

// Redacted returns a copy of b whose spec is redacted (InstanceSpec.Redacted).
func (b StartBox) Redacted() StartBox {
	b.Spec = b.Spec.Redacted()
	return b
}

func redactSecret(v Secret) Secret {
	if v.IsZero() {
		return v
	}
	return NewSecret(Redacted)
}
