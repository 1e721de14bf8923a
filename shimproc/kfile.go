package shimproc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// smallKernelFile is the buffer for a kernel file of a few lines (a
// process's statm, a cgroup's cpu.stat or cgroup.procs of a small box).
const smallKernelFile = 1024

// readKernelFile reads a /proc or cgroup file with plain open, read and
// close into a buffer of smallKernelFile bytes, falling back to os.ReadFile
// for a larger file. os.ReadFile costs a metrics sample more: an fstat for
// the size, and an attempt to register the descriptor with the netpoller
// (which cgroup files accept, so that closing it is one more epoll_ctl).
// It never follows a symbolic link in the last element.
func readKernelFile(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, smallKernelFile)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case m == 0:
			return buf[:n], nil
		}
		n += m
	}
	return os.ReadFile(path) // larger than the buffer: read it afresh, whole
}

// keyedValue returns the value of key in a "key value" per line file's
// content (cpu.stat).
func keyedValue(content []byte, key string) (uint64, error) {
	for line := range bytes.Lines(content) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if ok && string(k) == key {
			return strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, errors.New("no " + key)
}

// cgroupValue reads key from dir/file ("usage_usec" from cpu.stat).
func cgroupValue(dir, file, key string) (uint64, error) {
	raw, err := readKernelFile(dir + "/" + file)
	if err != nil {
		return 0, err
	}
	v, err := keyedValue(raw, key)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", dir, file, err)
	}
	return v, nil
}
