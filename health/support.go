package health

import (
	"net"
	"net/url"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// Supported checks a box's health check against its spec before the box
// is created: the check must be valid (messages.HealthCheck.ValidateFor:
// no secret value in it), and this prober must be able to run it against
// this spec. It refuses, with messages.ErrUnsupported (which is also
// ErrBadSpec) naming the reason:
//
//   - an exec check for an engine other than "process": the guest of a VM
//     engine runs in a VM, where the supervisor cannot start a command;
//   - an exec check for a box with the seccomp profile: the probe would run
//     without the filter that confines the guest (the profile is the
//     reference shim's, not exported to the supervisor yet).
//
// and, with ErrBadSpec, a tcp or http check of a box without a network
// (disable_network) that names anything but a loopback address: the probe
// runs in the box's network namespace, where only lo exists.
func Supported(check *messages.HealthCheck, spec *messages.InstanceSpec) error {
	if err := check.ValidateFor(spec); err != nil {
		return err
	}
	switch check.Kind() {
	case messages.HealthExec:
		if spec.Engine != messages.EngineProcess {
			return messages.Errorf(messages.ErrUnsupported, "health_check.exec: engine %s runs its guest where the supervisor cannot start a command; use a tcp, http or unix check", spec.Engine)
		}
		if spec.Security.Seccomp {
			return messages.Errorf(messages.ErrUnsupported, "health_check.exec: the box's seccomp profile cannot be applied to the probe's command yet; use a tcp, http or unix check")
		}
	case messages.HealthTCP:
		if spec.DisableNetwork {
			host, _, _ := net.SplitHostPort(check.TCP)
			if !loopbackHost(host) {
				return messages.Errorf(messages.ErrBadSpec, "health_check.tcp: the box has no network (disable_network): only a loopback address (127.0.0.1, ::1, localhost) reaches it")
			}
		}
	case messages.HealthHTTP:
		if spec.DisableNetwork {
			u, err := url.Parse(check.HTTP)
			if err != nil || !loopbackHost(u.Hostname()) {
				return messages.Errorf(messages.ErrBadSpec, "health_check.http: the box has no network (disable_network): only a loopback address (127.0.0.1, ::1, localhost) reaches it")
			}
		}
	}
	return nil
}

// loopbackHost reports whether host is "localhost" or a loopback IP
// literal: what a probe dials inside a box's own network namespace, where
// the resolver (which may run on another thread, in the host's namespace)
// is never asked.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
