package shim

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loadSeccomp installs the default profile (package seccompprofile) on the
// calling thread and, with TSYNC, on every other thread of the process. The
// caller has set no_new_privs or holds CAP_SYS_ADMIN, as the kernel
// requires.
func loadSeccomp() error {
	filter, err := seccompFilter()
	if err != nil {
		return fmt.Errorf("assemble the filter: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("install the filter: %w", errno)
	}
	if tid != 0 {
		// TSYNC's failure: a thread whose filters diverge, named by its id.
		return fmt.Errorf("install the filter: thread %d could not take it", tid)
	}
	return nil
}
