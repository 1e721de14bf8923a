// A shim needs no cgroup-aware GOMAXPROCS: turning it off saves start-up
// syscalls and keeps the runtime from holding cgroup files open at low
// descriptor numbers (see shim.inspectInheritedFDs).

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command boxsup-shim is boxsup's reference shim (the "process" engine): it
// runs one box's guest command under the shim contract described in
// docs/SHIM-PROTOCOL.md. It is started by the supervisor as
//
//	boxsup-shim --box-id ID
//
// with the box's InstanceSpec as JSON on stdin, and answers
//
//	boxsup-shim --capabilities
//
// with the spec fields it honours. It also runs itself, as
// `boxsup-shim --confine-init`, to confine a guest between fork and exec.
package main

import (
	"os"

	"github.com/boxsup/boxsup/shimproc/shim"
)

func main() {
	if len(os.Args) == 2 {
		switch os.Args[1] {
		case shim.CapabilitiesArg:
			os.Exit(shim.PrintCapabilities(os.Stdout))
		case shim.InitArg:
			os.Exit(shim.InitMain())
		}
	}
	os.Exit(shim.Main())
}
