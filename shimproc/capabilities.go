package shimproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// capabilitiesArg is the command line flag of the shim contract that asks a
// shim for its capabilities document (docs/SHIM-PROTOCOL.md).
const capabilitiesArg = "--capabilities"

// capabilitiesTimeout bounds one `SHIM --capabilities` run: a shim answers
// from a table, in milliseconds. A variable for tests.
var capabilitiesTimeout = 5 * time.Second

// maxCapabilitiesBytes bounds the document read from a shim.
const maxCapabilitiesBytes = 64 << 10

// legacyExitCode is what a shim that predates --capabilities exits with:
// the contract's usage error for any command line but `--box-id ID`.
const legacyExitCode = 125

// Capabilities returns what the shim binary at path honours, reading it
// once per version of the file: the answer is cached by the binary's real
// path and the file's identity (device, inode, size, mtime and ctime), so a
// replaced or rewritten binary is asked again. The binary must pass
// CheckShimBinary on every call, cached answer or not, since asking runs it
// as this uid. A shim that predates --capabilities yields a document with
// Legacy set that honours no optional field.
//
// Errors are not cached: a missing or untrusted binary is
// messages.ErrShimNotFound, one that does not answer in time
// messages.ErrTimeout, a malformed answer messages.ErrStartFailed; a ctx
// that ends first returns ctx.Err().
func Capabilities(ctx context.Context, path string) (messages.EngineCapabilities, error) {
	return defaultCapabilityCache.get(ctx, path)
}

// defaultCapabilityCache serves Capabilities: one per process, since it is
// keyed by the file's identity and any supervisor may share an answer.
var defaultCapabilityCache = newCapabilityCache(readCapabilities)

// readCapabilities runs `path --capabilities` with a timeout, without
// stdin, environment or inherited descriptors, and parses its answer.
func readCapabilities(ctx context.Context, path string) (messages.EngineCapabilities, error) {
	runCtx, cancel := context.WithTimeout(ctx, capabilitiesTimeout)
	defer cancel()
	var stdout, stderr cappedBuffer
	stdout.max, stderr.max = maxCapabilitiesBytes, 4<<10
	cmd := exec.CommandContext(runCtx, path, capabilitiesArg)
	cmd.Env = []string{} // nothing of the supervisor's
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so that a kill on timeout reaches anything it
	// started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()

	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return messages.EngineCapabilities{}, ctx.Err()
	case runCtx.Err() != nil:
		return messages.EngineCapabilities{}, messages.Errorf(messages.ErrTimeout, "%s %s: no answer within %v", path, capabilitiesArg, capabilitiesTimeout)
	case errors.As(err, &exitErr) && exitErr.ExitCode() == legacyExitCode && len(bytes.TrimSpace(stdout.Bytes())) == 0:
		// Rejected the flag as a bad command line: a shim from before
		// --capabilities. It honours nothing optional.
		return messages.EngineCapabilities{Legacy: true}, nil
	case errors.As(err, &exitErr):
		return messages.EngineCapabilities{}, messages.Errorf(messages.ErrStartFailed, "%s %s: %v: %s", path, capabilitiesArg, err, firstLine(stderr.Bytes()))
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOEXEC):
		return messages.EngineCapabilities{}, messages.Errorf(messages.ErrShimNotFound, "%s: %v", path, err)
	case err != nil:
		return messages.EngineCapabilities{}, messages.Errorf(messages.ErrStartFailed, "%s %s: %v", path, capabilitiesArg, err)
	case stdout.overflow:
		return messages.EngineCapabilities{}, messages.Errorf(messages.ErrStartFailed, "%s %s: more than %d bytes of answer", path, capabilitiesArg, maxCapabilitiesBytes)
	}
	var caps messages.EngineCapabilities
	if err := json.Unmarshal(stdout.Bytes(), &caps); err != nil {
		return messages.EngineCapabilities{}, messages.Errorf(messages.ErrStartFailed, "%s %s: malformed document: %v", path, capabilitiesArg, err)
	}
	if err := caps.Validate(); err != nil {
		return messages.EngineCapabilities{}, messages.Errorf(messages.ErrStartFailed, "%s %s: %v", path, capabilitiesArg, err)
	}
	caps.Legacy = false // never part of the document
	return caps, nil
}

// cappedBuffer keeps the first max bytes written to it and notes that more
// came; it never fails a write, so that the child is never blocked on a
// full pipe.
type cappedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.overflow = true
		_, _ = b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// firstLine returns the first line of b, for an error message.
func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	return string(line)
}

// fileID identifies one version of a file: a binary replaced by a rename or
// rewritten in place gets another (ctime changes on any write or rename,
// and nobody can set it back).
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

func statFileID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, messages.Errorf(messages.ErrShimNotFound, "%s: %v", path, err)
	}
	return fileIDOf(&st), nil
}

// fileIDOf is the identity in a stat already made.
func fileIDOf(st *unix.Stat_t) fileID {
	return fileID{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}
}

// capabilityCache holds one answer per shim path, for the file's current
// identity. Concurrent callers for the same file share one read, which
// runs on its own (a caller that gives up does not cancel it for others).
type capabilityCache struct {
	read func(ctx context.Context, path string) (messages.EngineCapabilities, error)

	mu      sync.Mutex
	entries map[string]*capabilityEntry
}

// capabilityEntry is one read, finished when done is closed.
type capabilityEntry struct {
	id   fileID
	done chan struct{}
	caps messages.EngineCapabilities
	err  error
}

func newCapabilityCache(read func(context.Context, string) (messages.EngineCapabilities, error)) *capabilityCache {
	return &capabilityCache{read: read, entries: map[string]*capabilityEntry{}}
}

// changingRetries bounds the re-reads of a binary that changes while it is
// being asked.
const changingRetries = 3

// get checks the binary (CheckShimBinary) on every call, before the cache
// is consulted, and keys the answer by the real path and by the identity of
// the very file the check passed: a binary swapped or chmod'ed after an
// earlier check is checked again and, being another file version (its
// ctime moved), asked again; a cached answer never stands in for the check.
// The binary is run by its real path.
func (c *capabilityCache) get(ctx context.Context, path string) (messages.EngineCapabilities, error) {
	for range changingRetries {
		real, st, err := checkShimBinary(path)
		if err != nil {
			return messages.EngineCapabilities{}, err
		}
		id := fileIDOf(st)
		e := c.entry(ctx, real, id)
		select {
		case <-e.done:
		case <-ctx.Done():
			return messages.EngineCapabilities{}, ctx.Err()
		}
		if e.err != nil {
			return messages.EngineCapabilities{}, e.err
		}
		if now, err := statFileID(real); err == nil && now == id {
			return e.caps, nil
		}
		// The file changed while it was asked: the answer may be either
		// version's. Ask again.
		c.forget(real, e)
	}
	return messages.EngineCapabilities{}, messages.Errorf(messages.ErrStartFailed, "%s: the binary kept changing while its capabilities were read", path)
}

// entry returns the current entry for path and id, starting its read if
// there is none.
func (c *capabilityCache) entry(ctx context.Context, path string, id fileID) *capabilityEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[path]; ok && e.id == id {
		return e
	}
	e := &capabilityEntry{id: id, done: make(chan struct{})}
	c.entries[path] = e
	readCtx := context.WithoutCancel(ctx) // bounded by capabilitiesTimeout
	go func() {
		e.caps, e.err = c.read(readCtx, path)
		if e.err != nil {
			c.forget(path, e) // a failure is not a verdict: ask again next time
		}
		close(e.done)
	}()
	return e
}

// forget drops e if it is still path's entry.
func (c *capabilityCache) forget(path string, e *capabilityEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[path] == e {
		delete(c.entries, path)
	}
}
