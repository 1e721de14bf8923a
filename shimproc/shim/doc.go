// Package shim is the child side of the boxsup shim contract (version 1,
// docs/SHIM-PROTOCOL.md): the reference "process" engine that
// cmd/boxsup-shim runs. One shim runs one box's guest, a plain command, as
// its child.
//
// The shim reads its InstanceSpec from stdin, signals readiness on fd 3,
// watches the supervisor's keepalive pipe on fd 4, forwards stop requests to
// the guest, records the guest's stdout and stderr in the console log
// (capped and rotated, as is its own shim.log), and leaves an exit record
// (exit.json) behind before it exits with the guest's status.
//
// A spec that asks for confinement (identity, rlimits, no_new_privs,
// seccomp, PID or network namespace) starts its guest through the shim's
// own binary run as an init (InitMain): in the new namespaces it applies the
// settings in runc's order and executes the guest in its place, reporting
// any failure back on a close-on-exec socket, so that a guest never runs
// with a setting missing. docs/SECURITY.md says what each setting does.
// Other specs keep the plain, faster os/exec start.
//
// It imports only the standard library, golang.org/x/sys/unix and boxsup's
// messages and layout packages (and, off amd64, its seccomp profile
// package): a shim is started for every box start and restart, so its
// start-up time matters (no protoactor, no gopsutil, no logrus, and not even
// package net, which would link the cgo resolver).
package shim
