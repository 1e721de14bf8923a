package messages

import (
	"math"
	"path/filepath"
	"strings"
)

// EngineKind names the engine a box runs on. Every engine is a shim binary
// that follows the shim contract (docs/SHIM-PROTOCOL.md).
type EngineKind string

// Known engines. EngineProcess is the reference engine (cmd/boxsup-shim): the
// guest is a plain command. The others are external shims (a VMM wrapper).
const (
	EngineProcess     EngineKind = "process"
	EngineLibkrun     EngineKind = "libkrun"
	EngineFirecracker EngineKind = "firecracker"
)

// MinSecretLen is the shortest secret value a spec may hold, in bytes. The
// log redactor replaces every registered secret wherever it appears in a log
// line; a value of one to three bytes would turn ordinary text into
// [REDACTED] everywhere while protecting nothing (it is guessed in a few
// thousand tries), so Validate refuses it rather than leave it unredacted.
const MinSecretLen = 4

// SpecVersion is the version of the shim contract this spec follows.
const SpecVersion = 1

// InstanceSpec is everything a shim needs to run one box. It travels to the
// shim as JSON on stdin, never on argv or in the shim's environment, because
// it may hold secrets. Never log it, nor its JSON: use
// logging.EmitRedactedConfigTrace.
type InstanceSpec struct {
	Version         int             `json:"version"`
	Engine          EngineKind      `json:"engine"`
	BoxID           string          `json:"box_id"`
	Security        SecurityOptions `json:"security"`
	CPUs            uint8           `json:"cpus,omitempty"`
	CPUMillis       uint32          `json:"cpu_millis,omitempty"` // CPU quota in 1/1000 CPU: CPUQuotaMillis
	MemoryMiB       uint32          `json:"memory_mib,omitempty"`
	FSShares        []FSShare       `json:"fs_shares,omitempty"`
	BlockDevices    []BlockDevice   `json:"block_devices,omitempty"`
	GuestEntrypoint Entrypoint      `json:"guest_entrypoint"`
	Transport       string          `json:"transport,omitempty"`
	ReadyTransport  string          `json:"ready_transport,omitempty"`
	GuestRootfs     *GuestRootfs    `json:"guest_rootfs,omitempty"`
	NetworkConfig   *NetworkConfig  `json:"network_config,omitempty"`
	DisableNetwork  bool            `json:"disable_network,omitempty"`
	HomeDir         string          `json:"home_dir,omitempty"`
	ConsoleOutput   string          `json:"console_output,omitempty"`
	ConsoleLog      LogRotation     `json:"console_log,omitzero"`
	ShimLog         LogRotation     `json:"shim_log,omitzero"`
	ExitFile        string          `json:"exit_file,omitempty"`
	Detach          bool            `json:"detach,omitempty"`
	Secrets         []SecretVar     `json:"secrets,omitempty"`
	// RestartInPlace is set by the supervisor, never by a caller: fd 3 is a
	// socket, and when the guest ends on its own the shim asks there
	// whether to start it again in place, keeping itself and the box's
	// cgroup (docs/SHIM-PROTOCOL.md §16). The supervisor sets it only for
	// an engine that honours it and a box whose restart policy may restart.
	RestartInPlace bool `json:"restart_in_place,omitempty"`
}

// Defaults and bounds of LogRotation (docs/SHIM-PROTOCOL.md, "Logs").
const (
	// DefaultConsoleLogMaxBytes and DefaultConsoleLogMaxFiles cap console.log
	// when spec.console_log leaves them zero: 10 MiB × 3 files.
	DefaultConsoleLogMaxBytes = 10 << 20
	DefaultConsoleLogMaxFiles = 3
	// DefaultShimLogMaxBytes and DefaultShimLogMaxFiles cap shim.log when
	// spec.shim_log leaves them zero: 1 MiB × 3 files (a shim writes a few
	// lines per run; the cap matters for a box that restarts for months).
	DefaultShimLogMaxBytes = 1 << 20
	DefaultShimLogMaxFiles = 3
	// MinLogMaxBytes is the smallest max_bytes accepted: a file must hold
	// at least a few of the largest records a shim writes (16 KiB of text
	// plus a header).
	MinLogMaxBytes = 64 << 10
	// MaxLogMaxFiles is the largest max_files accepted: every rotation
	// renames each kept file once.
	MaxLogMaxFiles = 100
)

// LogRotation caps a log file that the shim writes (console_log for the
// guest's output, shim_log for the shim's own): the file is rotated before a
// write would take it past MaxBytes, and MaxFiles files are kept in all
// (FILE, FILE.1, ..., FILE.<MaxFiles-1>, newest first). A zero field takes
// its default.
type LogRotation struct {
	MaxBytes int64 `json:"max_bytes,omitempty"`
	MaxFiles int   `json:"max_files,omitempty"`
}

// WithDefaults returns r with its zero fields set to maxBytes and maxFiles.
func (r LogRotation) WithDefaults(maxBytes int64, maxFiles int) LogRotation {
	if r.MaxBytes == 0 {
		r.MaxBytes = maxBytes
	}
	if r.MaxFiles == 0 {
		r.MaxFiles = maxFiles
	}
	return r
}

// validate checks r's bounds; field names the spec field in errors.
func (r LogRotation) validate(field string) error {
	if r.MaxBytes != 0 && r.MaxBytes < MinLogMaxBytes {
		return Errorf(ErrBadSpec, "%s.max_bytes: %d is below the minimum of %d (0 means the default)", field, r.MaxBytes, MinLogMaxBytes)
	}
	if r.MaxFiles < 0 || r.MaxFiles > MaxLogMaxFiles {
		return Errorf(ErrBadSpec, "%s.max_files: %d is not between 1 and %d (0 means the default)", field, r.MaxFiles, MaxLogMaxFiles)
	}
	return nil
}

// SecurityOptions are the isolation settings an engine applies to its guest.
// Each engine declares which of them it honours (`SHIM --capabilities`,
// docs/SHIM-PROTOCOL.md); a box that sets one its engine does not honour is
// refused with ErrUnsupported. docs/SECURITY.md says what the reference
// engine does with each.
//
// Zero means "not set" throughout: UID and GID 0 keep the identity the
// shim runs with (root, when the supervisor is root), and a zero limit is no
// limit. This is why a guest cannot be asked to run as uid 0 explicitly: it
// is what it gets unless another uid is set.
type SecurityOptions struct {
	Jailer  bool   `json:"jailer,omitempty"`
	Seccomp bool   `json:"seccomp,omitempty"` // the engine's default syscall filter
	UID     uint32 `json:"uid,omitempty"`
	GID     uint32 `json:"gid,omitempty"`
	// Groups are the guest's supplementary groups. When UID or GID is set
	// and Groups is empty, the guest has none (the supervisor's are not
	// inherited).
	Groups       []uint32 `json:"groups,omitempty"`
	MaxOpenFiles uint64   `json:"max_open_files,omitempty"` // RLIMIT_NOFILE, soft = hard
	MaxFileSize  uint64   `json:"max_file_size,omitempty"`  // RLIMIT_FSIZE in bytes, soft = hard
	MaxProcesses uint64   `json:"max_processes,omitempty"`  // RLIMIT_NPROC and the box's pids limit
	// NoNewPrivs sets no_new_privs for a guest that runs as root too; a
	// guest with another uid always gets it.
	NoNewPrivs  bool `json:"no_new_privs,omitempty"`
	NewPIDNS    bool `json:"new_pid_ns,omitempty"`
	SanitizeEnv bool `json:"sanitize_env,omitempty"`
	CloseFDs    bool `json:"close_fds,omitempty"`
}

// FSShare is a host directory shared with the guest (virtio-fs for a VMM).
type FSShare struct {
	Tag      string `json:"tag"`
	HostPath string `json:"host_path"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// BlockDevice is a disk image attached to the guest.
type BlockDevice struct {
	BlockID  string `json:"block_id"`
	DiskPath string `json:"disk_path"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Format   string `json:"format,omitempty"` // "raw" or "qcow2"
}

// Entrypoint is the guest's first process. For the reference engine it is the
// command the box runs.
type Entrypoint struct {
	Executable string   `json:"executable"`
	Args       []string `json:"args,omitempty"`
	Env        []string `json:"env,omitempty"` // KEY=VALUE, not secret
	WorkDir    string   `json:"work_dir,omitempty"`
}

// GuestRootfs describes the guest's root filesystem for a VMM engine.
type GuestRootfs struct {
	Path     string   `json:"path,omitempty"`
	Strategy string   `json:"strategy,omitempty"`
	Kernel   string   `json:"kernel,omitempty"`
	Initrd   string   `json:"initrd,omitempty"`
	Env      []string `json:"env,omitempty"`
}

// NetworkConfig provisions the guest's network backend. The CA key is a
// Secret: it prints as [REDACTED].
type NetworkConfig struct {
	SocketPath string   `json:"socket_path,omitempty"`
	AllowNet   []string `json:"allow_net,omitempty"`
	CACertPEM  string   `json:"ca_cert_pem,omitempty"`
	CAKeyPEM   Secret   `json:"ca_key_pem,omitempty"`
}

// SecretVar is a secret handed to the guest as an environment variable. It
// reaches the guest's environment only, never the shim's own.
type SecretVar struct {
	Name  string `json:"name"`
	Value Secret `json:"value"`
}

// Optional spec fields, named by their JSON path. Every shim honours the
// other fields (the shim contract, version 1); an optional one that a spec
// sets must be declared by the engine's capabilities, or the box is refused
// with ErrUnsupported.
const (
	FieldJailer         = "security.jailer"
	FieldSeccomp        = "security.seccomp"
	FieldUID            = "security.uid"
	FieldGID            = "security.gid"
	FieldGroups         = "security.groups"
	FieldMaxOpenFiles   = "security.max_open_files"
	FieldMaxFileSize    = "security.max_file_size"
	FieldMaxProcesses   = "security.max_processes"
	FieldNoNewPrivs     = "security.no_new_privs"
	FieldNewPIDNS       = "security.new_pid_ns"
	FieldSanitizeEnv    = "security.sanitize_env"
	FieldCloseFDs       = "security.close_fds"
	FieldCPUs           = "cpus"
	FieldCPUMillis      = "cpu_millis"
	FieldMemoryMiB      = "memory_mib"
	FieldFSShares       = "fs_shares"
	FieldBlockDevices   = "block_devices"
	FieldGuestRootfs    = "guest_rootfs"
	FieldNetworkConfig  = "network_config"
	FieldDisableNetwork = "disable_network"
	FieldHomeDir        = "home_dir"
	FieldConsoleLog     = "console_log"
	FieldShimLog        = "shim_log"
	// FieldRestartInPlace is set by the supervisor alone (StartBox
	// refuses it), for an engine that honours it.
	FieldRestartInPlace = "restart_in_place"
)

// OptionalFields lists every optional field, in the order the spec declares
// them.
func OptionalFields() []string {
	return []string{
		FieldJailer, FieldSeccomp, FieldUID, FieldGID, FieldGroups,
		FieldMaxOpenFiles, FieldMaxFileSize, FieldMaxProcesses, FieldNoNewPrivs,
		FieldNewPIDNS, FieldSanitizeEnv, FieldCloseFDs,
		FieldCPUs, FieldCPUMillis, FieldMemoryMiB, FieldFSShares, FieldBlockDevices, FieldGuestRootfs,
		FieldNetworkConfig, FieldDisableNetwork, FieldHomeDir, FieldConsoleLog, FieldShimLog,
		FieldRestartInPlace,
	}
}

// SetOptionalFields returns the optional fields this spec sets (holds a
// non-zero value in), in the order of OptionalFields.
func (s *InstanceSpec) SetOptionalFields() []string {
	sec := &s.Security
	set := map[string]bool{
		FieldJailer:         sec.Jailer,
		FieldSeccomp:        sec.Seccomp,
		FieldUID:            sec.UID != 0,
		FieldGID:            sec.GID != 0,
		FieldGroups:         len(sec.Groups) > 0,
		FieldMaxOpenFiles:   sec.MaxOpenFiles != 0,
		FieldMaxFileSize:    sec.MaxFileSize != 0,
		FieldMaxProcesses:   sec.MaxProcesses != 0,
		FieldNoNewPrivs:     sec.NoNewPrivs,
		FieldNewPIDNS:       sec.NewPIDNS,
		FieldSanitizeEnv:    sec.SanitizeEnv,
		FieldCloseFDs:       sec.CloseFDs,
		FieldCPUs:           s.CPUs != 0,
		FieldCPUMillis:      s.CPUMillis != 0,
		FieldMemoryMiB:      s.MemoryMiB != 0,
		FieldFSShares:       len(s.FSShares) > 0,
		FieldBlockDevices:   len(s.BlockDevices) > 0,
		FieldGuestRootfs:    s.GuestRootfs != nil,
		FieldNetworkConfig:  s.NetworkConfig != nil,
		FieldDisableNetwork: s.DisableNetwork,
		FieldHomeDir:        s.HomeDir != "",
		FieldConsoleLog:     s.ConsoleLog != LogRotation{},
		FieldShimLog:        s.ShimLog != LogRotation{},
		FieldRestartInPlace: s.RestartInPlace,
	}
	var out []string
	for _, f := range OptionalFields() {
		if set[f] {
			out = append(out, f)
		}
	}
	return out
}

// SecretValues returns every secret value in the spec (secret variables and
// the network CA key), for registration with the log redactor.
func (s *InstanceSpec) SecretValues() []string {
	var out []string
	for _, sv := range s.Secrets {
		if !sv.Value.IsZero() {
			out = append(out, sv.Value.Reveal())
		}
	}
	if s.NetworkConfig != nil && !s.NetworkConfig.CAKeyPEM.IsZero() {
		out = append(out, s.NetworkConfig.CAKeyPEM.Reveal())
	}
	return out
}

// Validate checks the spec and returns ErrBadSpec wrapped with the field at
// fault. It checks form, not the filesystem: paths must be absolute where a
// shim opens them, names must be usable as environment variable names, and
// a secret's value must appear nowhere but in its own entry
// (CheckSecretsConfined).
func (s *InstanceSpec) Validate() error {
	// First: the messages below quote fields, which must not hold a secret.
	if path, name, found := s.secretOutsideItsEntry(); found {
		return secretElsewhere(path, name)
	}
	if s.Version != 0 && s.Version != SpecVersion {
		return Errorf(ErrBadSpec, "version: %d is not supported (want %d)", s.Version, SpecVersion)
	}
	if s.Engine == "" {
		return Errorf(ErrBadSpec, "engine: must not be empty")
	}
	if !validEngineName(s.Engine) {
		return Errorf(ErrBadSpec, "engine: %q is not a valid engine name", s.Engine)
	}
	if s.BoxID == "" {
		return Errorf(ErrBadSpec, "box_id: must not be empty")
	}
	if s.GuestEntrypoint.Executable == "" {
		return Errorf(ErrBadSpec, "guest_entrypoint.executable: must not be empty")
	}
	if strings.IndexByte(s.GuestEntrypoint.Executable, 0) >= 0 {
		return Errorf(ErrBadSpec, "guest_entrypoint.executable: contains NUL")
	}
	for i, a := range s.GuestEntrypoint.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return Errorf(ErrBadSpec, "guest_entrypoint.args[%d]: contains NUL", i)
		}
	}
	for i, kv := range s.GuestEntrypoint.Env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !validEnvName(name) || strings.IndexByte(kv, 0) >= 0 {
			return Errorf(ErrBadSpec, "guest_entrypoint.env[%d]: want KEY=VALUE with a valid name", i)
		}
	}
	seen := map[string]bool{}
	for i, sv := range s.Secrets {
		if !validEnvName(sv.Name) {
			return Errorf(ErrBadSpec, "secrets[%d].name: %q is not a valid variable name", i, sv.Name)
		}
		if seen[sv.Name] {
			return Errorf(ErrBadSpec, "secrets[%d].name: %q given twice", i, sv.Name)
		}
		seen[sv.Name] = true
		// The value itself is never quoted in these errors.
		if strings.IndexByte(sv.Value.Reveal(), 0) >= 0 {
			return Errorf(ErrBadSpec, "secrets[%d].value: contains NUL", i)
		}
		if n := len(sv.Value.Reveal()); n < MinSecretLen {
			return Errorf(ErrBadSpec, "secrets[%d].value (%s): %d bytes; a secret must be at least %d bytes long, or the log redactor could not keep it out of logs", i, sv.Name, n, MinSecretLen)
		}
	}
	for _, f := range []struct{ name, path string }{
		{"transport", s.Transport},
		{"ready_transport", s.ReadyTransport},
		{"console_output", s.ConsoleOutput},
		{"exit_file", s.ExitFile},
		{"home_dir", s.HomeDir},
		{"guest_entrypoint.work_dir", s.GuestEntrypoint.WorkDir},
	} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			return Errorf(ErrBadSpec, "%s: %q must be an absolute path", f.name, f.path)
		}
		if strings.IndexByte(f.path, 0) >= 0 {
			return Errorf(ErrBadSpec, "%s: contains NUL", f.name)
		}
	}
	if nc := s.NetworkConfig; nc != nil && !nc.CAKeyPEM.IsZero() && len(nc.CAKeyPEM.Reveal()) < MinSecretLen {
		return Errorf(ErrBadSpec, "network_config.ca_key_pem: shorter than %d bytes", MinSecretLen)
	}
	for i, sh := range s.FSShares {
		if sh.Tag == "" || !filepath.IsAbs(sh.HostPath) {
			return Errorf(ErrBadSpec, "fs_shares[%d]: want a tag and an absolute host_path", i)
		}
	}
	if err := s.validateCPUMillis(); err != nil {
		return err
	}
	for i, bd := range s.BlockDevices {
		if bd.BlockID == "" || !filepath.IsAbs(bd.DiskPath) {
			return Errorf(ErrBadSpec, "block_devices[%d]: want a block_id and an absolute disk_path", i)
		}
		if bd.Format != "" && bd.Format != "raw" && bd.Format != "qcow2" {
			return Errorf(ErrBadSpec, "block_devices[%d].format: %q is not raw or qcow2", i, bd.Format)
		}
	}
	if err := s.ConsoleLog.validate("console_log"); err != nil {
		return err
	}
	if err := s.ShimLog.validate("shim_log"); err != nil {
		return err
	}
	if err := s.Security.validate(); err != nil {
		return err
	}
	if s.MemoryMiB != 0 && s.MemoryMiB < 16 {
		return Errorf(ErrBadSpec, "memory_mib: %d is below the 16 MiB minimum", s.MemoryMiB)
	}
	if s.RestartInPlace && s.ReadyTransport != "" {
		// A restarted guest's readiness would be a new connection to the
		// ready socket, which the in-place restart does not wait for.
		return Errorf(ErrBadSpec, "restart_in_place: not with ready_transport")
	}
	return nil
}

// maxGroups is the kernel's NGROUPS_MAX: setgroups refuses more.
const maxGroups = 65536

// noID is (uid_t)-1, which setuid and setgid read as "leave unchanged":
// never a valid identity.
const noID = math.MaxUint32

// validate checks the identity fields; the limits take any value.
func (o *SecurityOptions) validate() error {
	if o.UID == noID {
		return Errorf(ErrBadSpec, "security.uid: %d is not a valid uid", o.UID)
	}
	if o.GID == noID {
		return Errorf(ErrBadSpec, "security.gid: %d is not a valid gid", o.GID)
	}
	if len(o.Groups) > maxGroups {
		return Errorf(ErrBadSpec, "security.groups: %d groups, more than the kernel's %d", len(o.Groups), maxGroups)
	}
	for i, g := range o.Groups {
		if g == noID {
			return Errorf(ErrBadSpec, "security.groups[%d]: %d is not a valid gid", i, g)
		}
	}
	return nil
}

// validEngineName reports whether e can name an engine: not empty, and no
// character that could make it a path or split it.
func validEngineName(e EngineKind) bool {
	return e != "" && !strings.ContainsAny(string(e), "/\x00 ")
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
