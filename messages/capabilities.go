package messages

import (
	"fmt"
	"slices"
)

// CapabilitiesVersion is the version of the capabilities document that
// `SHIM --capabilities` prints (docs/SHIM-PROTOCOL.md). A reader refuses a
// document of another version rather than guess what it means.
const CapabilitiesVersion = 1

// CgroupController names a cgroup controller through which the supervisor,
// not the shim, enforces a resource field on the box's cgroup.
type CgroupController string

// The controllers a field may need.
const (
	ControllerCPU    CgroupController = "cpu"
	ControllerMemory CgroupController = "memory"
	ControllerPids   CgroupController = "pids"
)

// EngineCapabilities is the document a shim prints for `--capabilities`:
// the optional spec fields (OptionalFields) its engine honours. A field
// that is not listed is not honoured, and a spec that sets it is refused
// with ErrUnsupported. A listed field is honoured for every value that
// InstanceSpec.Validate accepts.
//
// A shim that predates --capabilities is described by the zero value
// (Legacy set by the reader): it honours no optional field.
type EngineCapabilities struct {
	Version int        `json:"capabilities_version"`
	Engine  EngineKind `json:"engine"`
	// Protocol is the shim contract version the shim follows.
	Protocol int `json:"protocol"`
	// Fields maps each honoured optional field to how it is honoured.
	Fields map[string]FieldSupport `json:"fields"`

	// Legacy is set by the reader (never printed) for a shim that does not
	// know --capabilities.
	Legacy bool `json:"-"`
}

// FieldSupport says how an engine honours one field. With Cgroup empty the
// shim applies the field itself; otherwise the field is honoured only when
// the supervisor applies it through each listed controller on the box's
// cgroup (the shim may apply a part of it too, as max_processes is also
// RLIMIT_NPROC).
type FieldSupport struct {
	Cgroup []CgroupController `json:"cgroup,omitempty"`
	// How is one line for people (boxsup info), never parsed.
	How string `json:"how,omitempty"`
}

// Honours returns how the engine honours field, and whether it does.
func (c *EngineCapabilities) Honours(field string) (FieldSupport, bool) {
	fs, ok := c.Fields[field]
	return fs, ok
}

// Validate checks a document read from a shim: its version, its engine name
// and its controllers. Unknown field names are accepted (a newer shim may
// honour fields this supervisor does not know; no spec can set them).
func (c *EngineCapabilities) Validate() error {
	if c.Version != CapabilitiesVersion {
		return fmt.Errorf("capabilities_version %d is not supported (want %d)", c.Version, CapabilitiesVersion)
	}
	if !validEngineName(c.Engine) {
		return fmt.Errorf("engine %q is not a valid engine name", c.Engine)
	}
	if c.Protocol != SpecVersion {
		return fmt.Errorf("protocol %d is not supported (want %d)", c.Protocol, SpecVersion)
	}
	known := []CgroupController{ControllerCPU, ControllerMemory, ControllerPids}
	for name, fs := range c.Fields {
		for _, ctl := range fs.Cgroup {
			if !slices.Contains(known, ctl) {
				return fmt.Errorf("fields[%q]: unknown cgroup controller %q", name, ctl)
			}
		}
	}
	return nil
}
