// Package shimproc is the parent side of the shim contract (docs/SHIM-PROTOCOL.md):
// it spawns a box's shim (spec JSON on stdin, ready pipe on fd 3, keepalive
// pipe on fd 4, optionally straight into the box's own cgroup v2), adopts a
// running shim by PID after a supervisor restart, and gives both kinds a
// Handle: pidfd-based signalling, tree kill, push exit notification through
// the Go netpoller, exit status and metrics.
//
// Choices worth knowing:
//
//   - Every handle holds exactly one pidfd. Exit notification parks one
//     goroutine per handle in the netpoller (no OS thread per box), and an
//     owned child is reaped with wait4 once the pidfd fires.
//   - Adopt opens the pidfd first and verifies the recorded identity (start
//     time, boot id) second, so the PID cannot be recycled in between; a
//     mismatched identity is never signalled.
//   - A process-group kill happens only while the group leader (the shim) is
//     known to be alive or unreaped; a cgroup kill needs no such guard because
//     the box's cgroup only ever holds the box's processes.
//   - The spec's secret values are registered with the log redactor from
//     Start until Handle.Close, so that anything logged about the box while
//     the handle lives (exit reasons included) is scrubbed.
//   - Close never signals: a supervisor that closes its handles on shutdown
//     leaves detached boxes running, to be adopted on the next start.
package shimproc
