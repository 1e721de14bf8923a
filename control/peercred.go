package control

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerCred returns the credentials the kernel recorded for the process at
// the other end of c when it connected (SO_PEERCRED): they cannot be forged
// by the peer, unlike anything it could send.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return cred, nil
}

// peerAllowed reports whether a peer with this uid may use the control API:
// the server's own (effective) uid, or root. The socket's 0600 mode already
// keeps others out; this is the second lock, which also holds when the mode
// was loosened or the socket was handed over as a descriptor.
func peerAllowed(uid uint32) bool {
	return uid == 0 || uid == uint32(os.Geteuid())
}
