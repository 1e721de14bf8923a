package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// File and directory names under the home root.
const (
	boxesDirName      = "boxes"
	lockFileName      = "lock"
	controlSocketName = "boxsup.sock"
)

// Home is a boxsup home directory: root/lock, root/boxsup.sock and one
// directory per box under root/boxes. Get one from Open.
type Home struct {
	// Root is the absolute, cleaned path of the home directory.
	Root string
}

// ResolveHome returns the home directory to use: $BOXSUP_HOME (made absolute
// against the working directory when relative), else $XDG_STATE_HOME/boxsup,
// else ~/.local/state/boxsup. A relative $XDG_STATE_HOME is ignored, as the
// XDG base directory specification requires. It touches nothing on disk.
func ResolveHome() (string, error) {
	if h := os.Getenv("BOXSUP_HOME"); h != "" {
		abs, err := filepath.Abs(h)
		if err != nil {
			return "", messages.Errorf(messages.ErrBadSpec, "BOXSUP_HOME %q: %v", h, err)
		}
		return abs, nil
	}
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "boxsup"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || !filepath.IsAbs(home) {
		return "", messages.Errorf(messages.ErrBadSpec,
			"cannot locate the boxsup home: set BOXSUP_HOME (no usable $HOME: %q)", home)
	}
	return filepath.Join(home, ".local", "state", "boxsup"), nil
}

// Open makes sure root and root/boxes exist, checks that they can be
// trusted, and returns the Home. root must be absolute; it is made canonical
// first (symbolic links resolved, see Canonical, which refuses a link
// another user controls), so that everything derived from the home's path
// (the short socket directory, the cgroup parent) is the same however the
// home was named. Directories Open creates get mode 0700. Existing ones are
// used only when they pass the checks described in trust.go (owned by this
// uid or root, not writable by group or others, no untrusted directory
// above): otherwise the error is messages.ErrUnsafeHome naming the path and
// the fix. A missing directory above the home is created only in one that
// passed those checks, so a refused home leaves nothing behind. Open never
// chmods or chowns an existing directory. A root that exists and is not a
// directory is refused before anything is created.
func Open(root string) (*Home, error) {
	if !filepath.IsAbs(root) {
		return nil, messages.Errorf(messages.ErrBadSpec, "home %q: must be an absolute path", root)
	}
	root, err := Canonical(root)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(root); err == nil && !fi.IsDir() {
		return nil, messages.Errorf(messages.ErrBadSpec, "home %s: exists and is not a directory", root)
	}
	if err := makeAncestors(root); err != nil {
		return nil, err
	}
	if err := ensurePrivateDir(root); err != nil {
		return nil, err
	}
	rootDir, err := openDirPath(root)
	if err != nil {
		return nil, fmt.Errorf("open home: %w", err)
	}
	defer rootDir.Close()
	if err := checkOpenDir(rootDir); err != nil {
		return nil, err
	}
	if err := mkdirAt(rootDir, boxesDirName); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open home: %w", err)
	}
	boxes, err := openDirAt(rootDir, boxesDirName)
	if errors.Is(err, unix.ENOTDIR) {
		return nil, messages.Errorf(messages.ErrBadSpec, "home: %s exists and is not a directory", filepath.Join(root, boxesDirName))
	}
	if err != nil {
		return nil, fmt.Errorf("open home: %w", err)
	}
	defer boxes.Close()
	if err := checkOpenDir(boxes); err != nil {
		return nil, err
	}
	return &Home{Root: root}, nil
}

// checkOpenDir checks an open directory of the home (see trust.go).
func checkOpenDir(d *os.File) error {
	st, err := fstat(d)
	if err != nil {
		return err
	}
	return checkHomeDir(d.Name(), st)
}

// ensurePrivateDir creates dir with mode 0700 (whatever the umask) unless it
// exists; an existing non-directory is an error.
func ensurePrivateDir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	switch {
	case err == nil:
		// Mkdir's mode is filtered by the umask; set it exactly.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("set mode of %s: %w", dir, err)
		}
		return nil
	case errors.Is(err, fs.ErrExist):
		fi, serr := os.Lstat(dir)
		if serr != nil {
			return fmt.Errorf("open home: %w", serr)
		}
		if !fi.IsDir() {
			return messages.Errorf(messages.ErrBadSpec, "home: %s exists and is not a directory", dir)
		}
		return nil
	default:
		return fmt.Errorf("open home: %w", err)
	}
}

// BoxesDir returns root/boxes, the parent of every box directory.
func (h *Home) BoxesDir() string { return filepath.Join(h.Root, boxesDirName) }

// LockPath returns root/lock, the file Lock holds.
func (h *Home) LockPath() string { return filepath.Join(h.Root, lockFileName) }

// Box returns the box with this ID. It validates the ID and has no effect on
// disk: the box may or may not exist.
func (h *Home) Box(id string) (Box, error) {
	if err := ValidateID(id); err != nil {
		return Box{}, err
	}
	return Box{ID: id, Dir: filepath.Join(h.BoxesDir(), id)}, nil
}

// BoxIDs returns the IDs of the box directories under root/boxes, sorted.
// Hidden names (a box being removed) and names that are not valid IDs, not
// directories, or symbolic links are skipped. A missing boxes directory means
// no boxes.
func (h *Home) BoxIDs() ([]string, error) {
	entries, err := os.ReadDir(h.BoxesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list boxes: %w", err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || ValidateID(e.Name()) != nil {
			continue
		}
		ids = append(ids, e.Name())
	}
	slices.Sort(ids)
	return ids, nil
}

// ControlSocketPath returns the path of the supervisor's control socket:
// root/boxsup.sock, or the same name in a short directory (see SocketDir)
// when that would not fit in sun_path. The short directory is created.
func (h *Home) ControlSocketPath() (string, error) {
	dir, err := SocketDir(h.Root, controlSocketName)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, controlSocketName), nil
}
