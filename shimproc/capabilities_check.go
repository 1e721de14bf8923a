package shimproc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// CheckSupported refuses, before anything is created, a spec that sets an
// optional field the engine's shim does not honour, or honours only through
// a cgroup controller that is not in controllers (those the supervisor can
// apply to this box's cgroup right now; nil: none). It reads the shim's
// capabilities through Capabilities (cached) and applies CheckSpec. The
// refusal is messages.ErrUnsupported, which also matches
// messages.ErrBadSpec; a shim that cannot be asked gives Capabilities'
// errors.
func CheckSupported(ctx context.Context, shimBinary string, spec *messages.InstanceSpec, controllers []messages.CgroupController) error {
	if len(spec.SetOptionalFields()) == 0 {
		return nil // every shim honours the core fields: no need to ask
	}
	caps, err := Capabilities(ctx, shimBinary)
	if err != nil {
		return err
	}
	return CheckSpec(spec, caps, controllers)
}

// CheckSpec checks spec against an engine's capabilities and the cgroup
// controllers the supervisor can apply (nil: none). It names every field
// that is not honoured, and the engine, in one messages.ErrUnsupported; a
// capabilities document for another engine than the spec's is
// messages.ErrBadSpec. It does no I/O.
func CheckSpec(spec *messages.InstanceSpec, caps messages.EngineCapabilities, controllers []messages.CgroupController) error {
	engine := spec.Engine
	if engine == "" {
		engine = messages.EngineProcess
	}
	if caps.Engine != "" && caps.Engine != engine {
		return messages.Errorf(messages.ErrBadSpec, "engine: the shim runs engine %q, not %q", caps.Engine, engine)
	}
	var refused []string
	for _, field := range spec.SetOptionalFields() {
		fs, ok := caps.Honours(field)
		if !ok {
			refused = append(refused, field+" is not honoured")
			continue
		}
		for _, ctl := range fs.Cgroup {
			if !slices.Contains(controllers, ctl) {
				refused = append(refused, fmt.Sprintf("%s needs the cgroup %s controller, which boxsup cannot apply to this box here", field, ctl))
			}
		}
	}
	if len(refused) == 0 {
		return nil
	}
	detail := strings.Join(refused, "; ")
	if caps.Legacy {
		detail += " (its shim predates --capabilities: it honours no optional field)"
	}
	return messages.Errorf(messages.ErrUnsupported, "engine %q: %s", engine, detail)
}
