package messages

import (
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
	ExitFile        string          `json:"exit_file,omitempty"`
	Detach          bool            `json:"detach,omitempty"`
	Secrets         []SecretVar     `json:"secrets,omitempty"`
}

// SecurityOptions are the isolation settings an engine applies. The reference
// engine honours none of them (it is a plain process); VMM shims do.
type SecurityOptions struct {
	Jailer       bool   `json:"jailer,omitempty"`
	Seccomp      bool   `json:"seccomp,omitempty"`
	UID          uint32 `json:"uid,omitempty"`
	GID          uint32 `json:"gid,omitempty"`
	MaxOpenFiles uint64 `json:"max_open_files,omitempty"`
	MaxFileSize  uint64 `json:"max_file_size,omitempty"`
	MaxProcesses uint64 `json:"max_processes,omitempty"`
	NewPIDNS     bool   `json:"new_pid_ns,omitempty"`
	SanitizeEnv  bool   `json:"sanitize_env,omitempty"`
	CloseFDs     bool   `json:"close_fds,omitempty"`
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
// shim opens them, names must be usable as environment variable names.
func (s *InstanceSpec) Validate() error {
	if s.Version != 0 && s.Version != SpecVersion {
		return Errorf(ErrBadSpec, "version: %d is not supported (want %d)", s.Version, SpecVersion)
	}
	if s.Engine == "" {
		return Errorf(ErrBadSpec, "engine: must not be empty")
	}
	if strings.ContainsAny(string(s.Engine), "/\x00 ") {
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
	if s.MemoryMiB != 0 && s.MemoryMiB < 16 {
		return Errorf(ErrBadSpec, "memory_mib: %d is below the 16 MiB minimum", s.MemoryMiB)
	}
	return nil
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
