package health

import "github.com/boxsup/boxsup/messages"

// Target is the running generation of a box that a check probes. The box
// actor fills it from the generation's shimproc.Handle and the box's spec
// when the generation is running, and hands a new one for each generation.
type Target struct {
	// Spec is the box's spec. An exec probe takes the guest's environment
	// (secrets included), uid, gid, groups, no_new_privs, namespaces and
	// working directory from it; every probe replaces its secret values in
	// the output it keeps. The prober never changes it.
	Spec *messages.InstanceSpec
	// Shim is the identity of the generation's shim (Handle.Identity()).
	// The guest is found as the shim's child, verified against it: an exec
	// probe of a box whose guest has its own PID or network namespace, and
	// a tcp or http probe of a box with its own network namespace
	// (disable_network), join the guest's namespaces. Other probes do not
	// need it.
	Shim messages.Identity
	// Cgroup is the generation's cgroup v2 directory (Handle.CgroupPath()),
	// or "" when the box has none. An exec probe is cloned into it (and
	// into its cgroup v1 mirrors on a hybrid host), so that it is counted
	// and limited with the box and dies with it.
	Cgroup string
}
