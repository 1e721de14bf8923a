package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// Environment variables the shim adds to the guest's environment.
const (
	// ReadySocketEnv carries spec.ready_transport: connect to it once when ready.
	ReadySocketEnv = "BOXSUP_READY_SOCKET"
	// TransportEnv carries spec.transport, the box's control channel, on
	// which the guest is expected to listen (the shim does not).
	TransportEnv = "BOXSUP_TRANSPORT"
)

// guestEnv builds the guest's whole environment: the spec's env, then the
// secrets as NAME=VALUE, then the BOXSUP_* variables; a later entry wins
// over an earlier one with the same name (dedupEnv keeps the last). The
// shim's own environment is deliberately not inherited: the guest's
// environment travels only in the spec.
//
// With sanitize_env, a guest whose spec sets no PATH gets minimalPath, and
// its executable is looked up there: nothing of the shim's environment, not
// even its PATH, then reaches or steers the guest.
func guestEnv(spec *messages.InstanceSpec) []string {
	env := make([]string, 0, len(spec.GuestEntrypoint.Env)+len(spec.Secrets)+3)
	if spec.Security.SanitizeEnv && !setsPATH(spec) {
		env = append(env, "PATH="+minimalPath)
	}
	env = append(env, spec.GuestEntrypoint.Env...)
	for _, s := range spec.Secrets {
		env = append(env, s.Name+"="+s.Value.Reveal()) // handed to its consumer: the guest
	}
	if spec.ReadyTransport != "" {
		env = append(env, ReadySocketEnv+"="+spec.ReadyTransport)
	}
	if spec.Transport != "" {
		env = append(env, TransportEnv+"="+spec.Transport)
	}
	return env
}

// minimalPath is a sanitized guest's PATH when its spec sets none: the one
// runc and Docker give a container.
const minimalPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// setsPATH reports whether the spec's env or secrets set PATH.
func setsPATH(spec *messages.InstanceSpec) bool {
	if _, ok := lookupEnv(spec.GuestEntrypoint.Env, "PATH"); ok {
		return true
	}
	for _, s := range spec.Secrets {
		if s.Name == "PATH" {
			return true
		}
	}
	return false
}

// lookupEnv returns the last value of name in env (the one os/exec keeps).
func lookupEnv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// resolveExecutable finds the guest's program the way exec.LookPath does,
// but searching the guest's PATH (the shim's own when the spec sets none). A
// name with a slash is used as given; a relative one is then relative to
// work_dir, since the child changes directory before it executes. Relative
// PATH entries (and empty ones, meaning ".") are skipped, as exec.LookPath
// refuses them (exec.ErrDot): the meaning of "." would depend on the
// directory.
func resolveExecutable(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, ok := lookupEnv(env, "PATH")
	if !ok {
		path = os.Getenv("PATH")
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		candidate := filepath.Join(dir, name)
		if fi, err := os.Stat(candidate); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("%q: executable file not found in the guest's PATH", name)
}

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
	env := dedupEnv(guestEnv(spec))
	path, err := resolveExecutable(spec.GuestEntrypoint.Executable, env)
	if err != nil {
		return nil, err
	}
	args := make([]string, 0, 1+len(spec.GuestEntrypoint.Args))
	args = append(args, spec.GuestEntrypoint.Executable)
	args = append(args, spec.GuestEntrypoint.Args...)
	return &guestLaunch{path: path, argv: args, env: env, dir: spec.GuestEntrypoint.WorkDir, stdout: stdout, stderr: stderr}, nil
}
