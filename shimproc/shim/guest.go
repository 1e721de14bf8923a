package shim

import (
	"os"

	"github.com/boxsup/boxsup/internal/guestenv"
	"github.com/boxsup/boxsup/messages"
)

// Environment variables the shim adds to the guest's environment.
const (
	// ReadySocketEnv carries spec.ready_transport: connect to it once when ready.
	ReadySocketEnv = guestenv.ReadySocketEnv
	// TransportEnv carries spec.transport, the box's control channel, on
	// which the guest is expected to listen (the shim does not).
	TransportEnv = guestenv.TransportEnv
)

// guestLaunch is how the guest is started: what guestCommand worked out
// from the spec.
type guestLaunch struct {
	path string   // the resolved executable
	argv []string // argv[0] is the executable as the spec names it
	env  []string // the whole environment, one entry per name
	dir  string   // "" keeps the shim's directory
	// stdout and stderr are the console's pipes (console.guestStdout and
	// guestStderr); stdin is /dev/null.
	stdout, stderr *os.File
}

// guestCommand works out the guest's start: argv[0] is the executable as the
// spec names it, stdin is /dev/null, stdout and stderr are the console's
// pipes.
//
// The guest stays in the shim's process group, so that the supervisor can
// kill the whole box with one kill(-pgid), and gets parent-death signal
// SIGKILL (startChild).
func guestCommand(spec *messages.InstanceSpec, stdout, stderr *os.File) (*guestLaunch, error) {
	// The shim's own environment is deliberately not inherited, and with
	// sanitize_env not even its PATH steers the lookup (guestenv.Build).
	env := dedupEnv(guestenv.Build(spec, true))
	path, err := guestenv.LookPath(spec.GuestEntrypoint.Executable, env)
	if err != nil {
		return nil, err
	}
	args := make([]string, 0, 1+len(spec.GuestEntrypoint.Args))
	args = append(args, spec.GuestEntrypoint.Executable)
	args = append(args, spec.GuestEntrypoint.Args...)
	return &guestLaunch{path: path, argv: args, env: env, dir: spec.GuestEntrypoint.WorkDir, stdout: stdout, stderr: stderr}, nil
}
