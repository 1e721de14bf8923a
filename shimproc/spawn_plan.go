package shimproc

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// spawnPlan is a SpawnRequest after validation: everything Start needs,
// worked out before anything on disk changes, so that bad input fails with a
// typed error and leaves no trace.
type spawnPlan struct {
	box          layout.Box
	binary       string // absolute
	spec         messages.InstanceSpec
	specJSON     []byte // holds secrets: goes to the shim's stdin only
	secrets      []string
	readyTimeout time.Duration
	cgroupRoot   string // "" when the box gets no cgroup
	cgroupDir    string // absolute box cgroup, "" when none
	staleSockets []string
	log          logrus.FieldLogger
}

// planSpawn validates req and fills the spec's derived fields.
func planSpawn(req SpawnRequest) (*spawnPlan, error) {
	p := &spawnPlan{box: req.Box, log: loggerOrDiscard(req.Logger).WithField("box_id", req.Box.ID)}
	if err := layout.ValidateID(req.Box.ID); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(req.Box.Dir); err != nil || !fi.IsDir() || !filepath.IsAbs(req.Box.Dir) {
		return nil, messages.Errorf(messages.ErrNotFound, "box %s: directory %q does not exist", req.Box.ID, req.Box.Dir)
	}

	spec := req.Spec
	switch spec.BoxID {
	case "":
		spec.BoxID = req.Box.ID
	case req.Box.ID:
	default:
		return nil, messages.Errorf(messages.ErrBadSpec, "box_id: %q does not match box %q", spec.BoxID, req.Box.ID)
	}
	if spec.Version == 0 {
		spec.Version = messages.SpecVersion
	}
	if spec.ConsoleOutput == "" {
		spec.ConsoleOutput = req.Box.ConsoleLogPath()
	}
	if spec.ExitFile == "" {
		spec.ExitFile = req.Box.ExitPath()
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	specJSON, err := json.Marshal(&spec)
	if err != nil {
		return nil, messages.Errorf(messages.ErrBadSpec, "encoding the spec: %v", err)
	}
	p.spec, p.specJSON, p.secrets = spec, specJSON, spec.SecretValues()

	if p.binary, err = resolveBinary(req.Binary); err != nil {
		return nil, err
	}

	switch {
	case req.ReadyTimeout < 0:
		return nil, messages.Errorf(messages.ErrBadSpec, "ready timeout %v is negative", req.ReadyTimeout)
	case req.ReadyTimeout == 0:
		p.readyTimeout = messages.DefaultReadyTimeout
	default:
		p.readyTimeout = req.ReadyTimeout
	}

	if err := p.planCgroup(req); err != nil {
		return nil, err
	}

	for _, f := range []struct{ field, path string }{
		{"transport", spec.Transport},
		{"ready_transport", spec.ReadyTransport},
	} {
		stale, err := checkSocketPath(f.field, f.path)
		if err != nil {
			return nil, err
		}
		if stale {
			p.staleSockets = append(p.staleSockets, f.path)
		}
	}
	return p, nil
}

// planCgroup decides whether the box gets a cgroup, and where.
func (p *spawnPlan) planCgroup(req SpawnRequest) error {
	parent := req.CgroupParent
	if parent == "" {
		parent = DefaultCgroupParent
	}
	if err := validCgroupParent(parent); err != nil {
		return err
	}
	switch req.Cgroup {
	case CgroupOff:
		return nil
	case CgroupAuto, CgroupRequired:
	default:
		return messages.Errorf(messages.ErrBadSpec, "cgroup mode %d is not auto, off or required", req.Cgroup)
	}
	root, ok := CgroupAvailable()
	if !ok {
		if req.Cgroup == CgroupRequired {
			return messages.Errorf(messages.ErrCgroup, "box %s: a cgroup is required but no writable cgroup v2 hierarchy exists at %s or %s",
				req.Box.ID, cgroupRoots[0], cgroupRoots[1])
		}
		return nil
	}
	p.cgroupRoot = root
	p.cgroupDir = filepath.Join(root, parent, req.Box.ID)
	return checkBoxCgroupFree(p.cgroupDir, req.Box.ID)
}

// resolveBinary checks that the shim binary exists and is an executable file,
// and makes its path absolute.
func resolveBinary(path string) (string, error) {
	if path == "" {
		return "", messages.Errorf(messages.ErrShimNotFound, "no path given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", messages.Errorf(messages.ErrShimNotFound, "%s", path)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", messages.Errorf(messages.ErrShimNotFound, "%s", path)
		}
		return "", messages.Errorf(messages.ErrShimNotFound, "%s (%v)", path, err)
	}
	if !fi.Mode().IsRegular() || unix.Access(abs, unix.X_OK) != nil {
		return "", messages.Errorf(messages.ErrShimNotFound, "%s (not an executable file)", path)
	}
	return abs, nil
}

// checkSocketPath inspects a socket path from the spec. Nothing there is fine;
// a socket is stale (a previous run's) and will be removed before the spawn;
// anything else is refused with messages.ErrNotSocket and left alone.
func checkSocketPath(field, path string) (stale bool, err error) {
	if path == "" {
		return false, nil
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, messages.Errorf(messages.ErrBadSpec, "%s: %v", field, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return false, messages.Errorf(messages.ErrNotSocket, "%s %s is a %s; refusing to remove it", field, path, fileKind(fi.Mode()))
	}
	return true, nil
}

// fileKind names a file type for error messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "non-socket file"
}

// loggerOrDiscard returns l, or a logger that drops everything.
func loggerOrDiscard(l logrus.FieldLogger) logrus.FieldLogger {
	if l != nil {
		return l
	}
	return discardLogger
}

var discardLogger = func() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.PanicLevel)
	return l
}()
