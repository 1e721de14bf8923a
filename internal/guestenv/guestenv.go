// Package guestenv builds a guest's environment and finds its program the
// way the reference shim does, so that the shim, which starts the guest,
// and the supervisor, which runs exec health probes "as the guest", agree
// to the byte. It imports nothing but the standard library and messages:
// the shim binary stays small.
package guestenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// Environment variables the reference shim adds to the guest's environment.
const (
	// ReadySocketEnv carries spec.ready_transport: connect to it once when
	// ready.
	ReadySocketEnv = "BOXSUP_READY_SOCKET"
	// TransportEnv carries spec.transport, the box's control channel, on
	// which the guest is expected to listen (the shim does not).
	TransportEnv = "BOXSUP_TRANSPORT"
)

// MinimalPath is a sanitized guest's PATH when its spec sets none: the one
// runc and Docker give a container.
const MinimalPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrNotFound is the cause of a LookPath failure.
var ErrNotFound = errors.New("executable file not found in the guest's PATH")

// Build returns a guest's whole environment: MinimalPath for a sanitized
// spec that sets no PATH, the spec's env, the secrets as NAME=VALUE, then
// BOXSUP_TRANSPORT, and BOXSUP_READY_SOCKET when withReady (a health probe
// has no business signalling readiness). A later entry wins over an earlier
// one with the same name, as with os/exec. The caller's own environment is
// deliberately not inherited: the guest's environment travels only in the
// spec. The result holds secrets: it goes to a process, never to a log.
func Build(spec *messages.InstanceSpec, withReady bool) []string {
	env := make([]string, 0, len(spec.GuestEntrypoint.Env)+len(spec.Secrets)+3)
	if spec.Security.SanitizeEnv && !SetsPATH(spec) {
		env = append(env, "PATH="+MinimalPath)
	}
	env = append(env, spec.GuestEntrypoint.Env...)
	for _, s := range spec.Secrets {
		env = append(env, s.Name+"="+s.Value.Reveal()) // handed to its consumer, the guest
	}
	if withReady && spec.ReadyTransport != "" {
		env = append(env, ReadySocketEnv+"="+spec.ReadyTransport)
	}
	if spec.Transport != "" {
		env = append(env, TransportEnv+"="+spec.Transport)
	}
	return env
}

// SetsPATH reports whether the spec's env or secrets set PATH.
func SetsPATH(spec *messages.InstanceSpec) bool {
	if _, ok := Lookup(spec.GuestEntrypoint.Env, "PATH"); ok {
		return true
	}
	for _, s := range spec.Secrets {
		if s.Name == "PATH" {
			return true
		}
	}
	return false
}

// Lookup returns the last value of name in env (the one os/exec keeps).
func Lookup(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// LookPath finds a guest's program the way exec.LookPath does, but in the
// guest's PATH from env (the caller's own when env sets none). A name with
// a slash is returned as given; a relative one is then relative to the
// guest's work_dir, since the guest changes directory before it executes.
// Relative PATH entries (and empty ones, meaning ".") are skipped, as
// exec.LookPath refuses them (exec.ErrDot): what "." means would depend on
// the directory. A failure is an *fs.PathError wrapping ErrNotFound.
func LookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, ok := Lookup(env, "PATH")
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
	return "", &fs.PathError{Op: "exec", Path: name, Err: ErrNotFound}
}
