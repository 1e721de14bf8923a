package shim

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/boxsup/boxsup/messages"
)

// CapabilitiesArg makes the shim print its capabilities document
// (messages.EngineCapabilities) on stdout and exit 0, without reading stdin
// or touching any descriptor: `boxsup-shim --capabilities`.
const CapabilitiesArg = "--capabilities"

// honoured is what the reference engine does with each optional field it
// honours. Resource fields are the supervisor's to enforce on the box's
// cgroup; the shim cannot check that it did.
var honoured = map[string]messages.FieldSupport{
	messages.FieldUID:            {How: "setuid in the guest before exec; implies no_new_privs"},
	messages.FieldGID:            {How: "setgid in the guest before exec"},
	messages.FieldGroups:         {How: "setgroups in the guest before exec (none when uid or gid is set without groups)"},
	messages.FieldMaxOpenFiles:   {How: "RLIMIT_NOFILE, soft = hard"},
	messages.FieldMaxFileSize:    {How: "RLIMIT_FSIZE, soft = hard"},
	messages.FieldMaxProcesses:   {How: "RLIMIT_NPROC in the guest, and pids.max on the box cgroup", Cgroup: []messages.CgroupController{messages.ControllerPids}},
	messages.FieldNoNewPrivs:     {How: "PR_SET_NO_NEW_PRIVS, also for a root guest"},
	messages.FieldSeccomp:        {How: "the default deny-list filter (docs/SECURITY.md); a denied call fails with EPERM"},
	messages.FieldNewPIDNS:       {How: "the guest is PID 1 of a new PID namespace, with its own /proc in a new mount namespace"},
	messages.FieldDisableNetwork: {How: "a new network namespace holding only loopback, brought up"},
	messages.FieldSanitizeEnv:    {How: "the guest gets the spec's env, its secrets, the BOXSUP_* variables and a minimal PATH; never the shim's PATH"},
	messages.FieldCloseFDs:       {How: "the guest inherits descriptors 0, 1 and 2 only (checked, not best effort)"},
	messages.FieldCPUs:           {How: "CPU quota on the box cgroup, by the supervisor", Cgroup: []messages.CgroupController{messages.ControllerCPU}},
	messages.FieldCPUMillis:      {How: "CPU quota in thousandths of a CPU on the box cgroup, by the supervisor", Cgroup: []messages.CgroupController{messages.ControllerCPU}},
	messages.FieldMemoryMiB:      {How: "memory limit (swap off) on the box cgroup, by the supervisor", Cgroup: []messages.CgroupController{messages.ControllerMemory}},
	messages.FieldConsoleLog:     {How: "console_output is rotated at max_bytes, max_files kept (docs/SHIM-PROTOCOL.md §15)"},
	messages.FieldShimLog:        {How: "shim.log is rotated at max_bytes, max_files kept"},
	messages.FieldRestartInPlace: {How: "asks on fd 3 when the guest ends on its own, and restarts it in place when told to (docs/SHIM-PROTOCOL.md §16)"},
}

// refused says why the reference engine cannot honour the other optional
// fields: a plain process is not a VM. A spec that sets one is a bad spec
// for the shim, and the supervisor refuses it earlier (ErrUnsupported).
var refused = map[string]string{
	messages.FieldJailer:        "no jailer: the guest shares the host's filesystem and devices (use uid, seccomp and namespaces)",
	messages.FieldFSShares:      "no VM to share a directory with: the guest sees the host's filesystem",
	messages.FieldBlockDevices:  "no VM to attach a disk to",
	messages.FieldGuestRootfs:   "the guest runs on the host's root filesystem",
	messages.FieldNetworkConfig: "no network backend: the guest uses the host's network, or none with disable_network",
	messages.FieldHomeDir:       "a VMM's runtime directory; the process engine has none",
}

// Capabilities returns the reference engine's capabilities document.
func Capabilities() messages.EngineCapabilities {
	fields := make(map[string]messages.FieldSupport, len(honoured))
	for name, fs := range honoured {
		fields[name] = fs
	}
	return messages.EngineCapabilities{
		Version:  messages.CapabilitiesVersion,
		Engine:   messages.EngineProcess,
		Protocol: messages.SpecVersion,
		Fields:   fields,
	}
}

// PrintCapabilities writes the capabilities document as one line of JSON to
// w and returns the exit code for os.Exit.
func PrintCapabilities(w io.Writer) int {
	b, err := json.Marshal(Capabilities())
	if err == nil {
		_, err = fmt.Fprintf(w, "%s\n", b)
	}
	if err != nil {
		return ExitUsage
	}
	return 0
}

// checkHonoured refuses a spec that sets an optional field this engine
// does not honour. The supervisor refuses such a spec before it spawns a
// shim; this is the shim's own guard against a supervisor that did not ask.
// A cgroup-backed field is accepted: the supervisor applies it.
func checkHonoured(spec *messages.InstanceSpec) error {
	for _, field := range spec.SetOptionalFields() {
		if _, ok := honoured[field]; !ok {
			return fmt.Errorf("%s: not supported by the %s engine (%s)", field, messages.EngineProcess, refused[field])
		}
	}
	return nil
}
