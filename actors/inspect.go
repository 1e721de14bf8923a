package actors

import (
	"context"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// Inspect returns everything known about box id: its status, its
// state.json and spec.json as they are on disk (a file that cannot be read
// is reported in the result, not as the error), its cgroup, paths and, for
// a live box, the limits in force from a metrics sample. An unknown box is
// messages.ErrNotFound.
//
// The files are read with layout's checked readers (no symbolic link
// followed, owner and mode checked), off the box's actor: a damaged or
// unsafe file is reported in the result and changes nothing for the box.
// The spec is redacted here, in the supervisor's process: its secrets never
// reach the caller, nor another host.
func (s *Supervisor) Inspect(ctx context.Context, id string) (messages.BoxInspect, error) {
	st, err := s.Status(ctx, id)
	if err != nil {
		return messages.BoxInspect{ID: id}, err
	}
	return s.inspect(ctx, st), nil
}

func (s *Supervisor) inspect(ctx context.Context, st messages.BoxStatus) messages.BoxInspect {
	out := messages.BoxInspect{ID: st.ID, Status: st}
	out.Status.Err = nil
	h, err := layout.Open(s.Home())
	if err != nil {
		out.RecordError, out.SpecError = messages.AsError(err), messages.AsError(err)
		return out
	}
	box, err := h.Box(st.ID)
	if err != nil {
		out.RecordError, out.SpecError = messages.AsError(err), messages.AsError(err)
		return out
	}
	out.Paths = messages.BoxPaths{
		Home: h.Root, Dir: box.Dir, Spec: box.SpecPath(), State: box.StatePath(), Exit: box.ExitPath(),
		ConsoleLog: box.ConsoleLogPath(), ShimLog: box.ShimLogPath(), Sockets: box.SocketsDir(),
	}
	if rec, err := box.ReadState(); err != nil {
		out.RecordError = messages.AsError(err)
	} else {
		out.Record = &rec
		out.Cgroup = rec.Cgroup
	}
	if spec, err := box.ReadSpec(); err != nil {
		out.SpecError = messages.AsError(err)
	} else {
		red := spec.Redacted()
		out.Spec = &red
		out.Limits = messages.SpecLimits(&spec.Spec)
	}
	if st.State.Live() {
		m, err := s.Metrics(ctx, st.ID)
		switch {
		case err != nil:
			out.EnforcedError = messages.AsError(err)
		case m.CPUQuotaMillis != 0 || m.MemoryLimitBytes != 0 || m.PidsLimit != 0:
			out.Enforced = &messages.Limits{CPUMillis: m.CPUQuotaMillis, MemoryBytes: m.MemoryLimitBytes, Pids: m.PidsLimit}
		}
	}
	return out
}
