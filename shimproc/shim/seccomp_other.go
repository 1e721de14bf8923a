//go:build !amd64

package shim

import (
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/shimproc/shim/internal/seccompprofile"
)

// seccompFilter assembles the default profile for this architecture (on
// amd64 it is generated source instead: seccomp_filter_amd64.go).
func seccompFilter() ([]unix.SockFilter, error) {
	raw, err := seccompprofile.Program()
	if err != nil {
		return nil, err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return filter, nil
}
