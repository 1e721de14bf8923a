package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// makeAncestors makes sure every directory above root exists and passes
// checkAncestor, creating the missing ones with mode 0700. It walks down
// from / one element at a time, each directory opened relative to its
// parent without following a symbolic link and checked before anything is
// created in it: a home named under another user's directory
// (/home/them/x/y/home) is refused without leaving x/ behind, and a link
// planted in /tmp between Canonical and this walk is refused, not followed.
// root is absolute and canonical.
func makeAncestors(root string) error {
	dir, err := openDirPath("/")
	if err != nil {
		return fmt.Errorf("open home %s: %w", root, err)
	}
	defer func() { dir.Close() }()
	if err := checkOpenAncestor(dir); err != nil {
		return err
	}
	for name := range strings.SplitSeq(filepath.Dir(root), "/") {
		if name == "" { // before the leading /, or all of "/"
			continue
		}
		next, err := openDirAt(dir, name)
		if errors.Is(err, fs.ErrNotExist) {
			if err := mkdirAt(dir, name); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("open home %s: %w", root, err)
			}
			next, err = openDirAt(dir, name)
		}
		if err != nil {
			// Not a directory, or a link: say so as the rule does.
			var st unix.Stat_t
			if unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				if cerr := checkAncestor(filepath.Join(dir.Name(), name), &st); cerr != nil {
					return cerr
				}
			}
			return fmt.Errorf("open home %s: %w", root, err)
		}
		dir.Close()
		dir = next
		if err := checkOpenAncestor(dir); err != nil {
			return err
		}
	}
	return nil
}

// checkOpenAncestor checks an open directory above the home.
func checkOpenAncestor(d *os.File) error {
	st, err := fstat(d)
	if err != nil {
		return err
	}
	return checkAncestor(d.Name(), st)
}
