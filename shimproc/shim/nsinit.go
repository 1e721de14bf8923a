package shim

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mountOwnProc gives a guest in a new PID namespace a /proc that shows that
// namespace, as a container's has: without it /proc would still list every
// process of the host. The init runs in a new mount namespace too; its
// mounts are first made slaves of the host's, so that mounts the host adds
// later still reach the guest while the guest's own (this /proc) never
// propagate back to the host.
func mountOwnProc() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts private to the box: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	return nil
}

// bringLoopbackUp sets IFF_UP on lo, the only interface of a new network
// namespace, which starts down: a guest without a network still talks to
// itself over 127.0.0.1, as under systemd's PrivateNetwork=. Plain ioctls,
// so that the shim does not need package net (nor netlink).
func bringLoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
