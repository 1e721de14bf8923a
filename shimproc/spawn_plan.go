package shimproc

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// spawnPlan is a SpawnRequest after validation: everything Start needs,
// worked out before anything on disk changes, so that bad input fails with a
// typed error and leaves no trace.
type spawnPlan struct {
	box          layout.Box
	binary       string // absolute, every link resolved, checked (CheckShimBinary)
	spec         messages.InstanceSpec
	specJSON     []byte // holds secrets: goes to the shim's stdin only
	secrets      []string
	readyTimeout time.Duration
	cgroupRoot   string      // "" when the box gets no cgroup
	boxCgroup    string      // absolute cgroup of the box (every generation), "" when none
	cgroupDir    string      // absolute cgroup of this generation, "" when none
	limits       *limitsPlan // resource limits; nil when the spec sets none
	spawnToken   string
	staleSockets []string
	log          logrus.FieldLogger
	logLevel     string // the shim's LogLevelEnv: the supervisor's level
}

// planSpawn validates req and fills the spec's derived fields.
func planSpawn(req SpawnRequest) (*spawnPlan, error) {
	p := &spawnPlan{box: req.Box, spawnToken: req.SpawnToken, log: loggerOrDiscard(req.Logger).WithField("box_id", req.Box.ID),
		logLevel: levelOf(req.Logger)}
	if strings.ContainsAny(req.SpawnToken, "\x00\n=") {
		return nil, messages.Errorf(messages.ErrBadSpec, "spawn token contains a NUL, a newline or '='")
	}
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

	// Checked at every spawn, not once per supervisor: the binary may
	// have changed since the last. The real path it returns is what is
	// exec'ed (see binary_trust.go for what that leaves open).
	if p.binary, err = CheckShimBinary(req.Binary); err != nil {
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

// planCgroup decides whether the box gets a cgroup, and where: generation
// N of box ID lives in ROOT/PARENT/ID/gen-N, so that a new generation never
// shares a cgroup with an old one (an old teardown cannot kill a new shim),
// and no generation starts while any process of the box is left anywhere
// under ROOT/PARENT/ID.
//
// The spec's resource limits are placed on that cgroup (or its cgroup v1
// mirrors); a box without a cgroup, or a limit without its controller, is
// refused with messages.ErrUnsupported.
func (p *spawnPlan) planCgroup(req SpawnRequest) error {
	box, err := BoxCgroupDir(req.Cgroup, req.CgroupParent, req.Box.ID)
	if err != nil {
		return err
	}
	if box != "" {
		p.cgroupRoot, _ = CgroupAvailable()
		p.boxCgroup = box
		p.cgroupDir = GenCgroupDir(box, req.Generation)
		if err := checkBoxCgroupFree(box, req.Box.ID); err != nil {
			return err
		}
	}
	p.limits, err = planLimits(&p.spec, p.cgroupRoot, p.cgroupDir, req.Cgroup, req.CgroupParent)
	return err
}

// BoxCgroupDir returns the absolute cgroup directory under which every
// generation of box id gets its cgroup: ROOT/PARENT/ID, where ROOT is the
// writable cgroup v2 hierarchy and PARENT parent ("" means
// DefaultCgroupParent). It returns "" when the box gets no cgroup (mode
// CgroupOff, or CgroupAuto without a writable hierarchy), and
// messages.ErrCgroup when mode is CgroupRequired and there is none. It
// touches nothing.
func BoxCgroupDir(mode CgroupMode, parent, id string) (string, error) {
	if parent == "" {
		parent = DefaultCgroupParent
	}
	if err := validCgroupParent(parent); err != nil {
		return "", err
	}
	if err := layout.ValidateID(id); err != nil {
		return "", err
	}
	switch mode {
	case CgroupOff:
		return "", nil
	case CgroupAuto, CgroupRequired:
	default:
		return "", messages.Errorf(messages.ErrBadSpec, "cgroup mode %d is not auto, off or required", mode)
	}
	root, ok := CgroupAvailable()
	if !ok {
		if mode == CgroupRequired {
			return "", messages.Errorf(messages.ErrCgroup, "box %s: a cgroup is required but no writable cgroup v2 hierarchy exists at %s or %s",
				id, cgroupRoots[0], cgroupRoots[1])
		}
		return "", nil
	}
	return filepath.Join(root, parent, id), nil
}

// GenCgroupDir returns generation gen's cgroup under the box's cgroup
// directory boxDir ("" when boxDir is "").
func GenCgroupDir(boxDir string, gen uint64) string {
	if boxDir == "" {
		return ""
	}
	return filepath.Join(boxDir, "gen-"+strconv.FormatUint(gen, 10))
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
// levelOf names the finest level l lets through, for the shim; info for a
// nil logger (the shim's default).
func levelOf(l logrus.FieldLogger) string {
	if l == nil {
		return "info"
	}
	for _, lv := range []logrus.Level{logrus.TraceLevel, logrus.DebugLevel, logrus.InfoLevel, logrus.WarnLevel} {
		if logging.LevelEnabled(l, lv) {
			return lv.String()
		}
	}
	return "error"
}

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
