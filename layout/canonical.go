package layout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// maxLinks is how many symbolic links Canonical follows in one path before
// giving up with ELOOP, as the kernel does (MAXSYMLINKS).
const maxLinks = 40

// Canonical returns the absolute path root with every symbolic link
// resolved, for the part of it that exists; the missing tail is appended as
// it is. Two names for one home give one path.
//
// It resolves the path one element at a time, as the kernel would, so that
// it can judge every link it meets before following it: the link's target
// decides where the home is, so a link is followed only when it is owned by
// this process's effective uid or root and the directory holding it (and
// every directory above that) passes the rule for the directories above the
// home (see trust.go), since whoever can write that directory can replace
// the link. Anything else is messages.ErrUnsafeHome naming the link: another
// user's link in /tmp must not point boxsup at root's real home, or make it
// create directories where that user chose. A link whose target does not
// exist is messages.ErrBadSpec, as it would be for mkdir -p.
func Canonical(root string) (string, error) {
	if !filepath.IsAbs(root) {
		return "", messages.Errorf(messages.ErrBadSpec, "home %q: must be an absolute path", root)
	}
	root = filepath.Clean(root)
	resolved := "/" // free of links, and every element of it exists
	todo := elements(root, "")
	links := 0
	for len(todo) > 0 {
		el := todo[0]
		todo = todo[1:]
		switch el.name {
		case ".":
			continue
		case "..":
			// resolved has no link in it, so its parent is lexical.
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, el.name)
		var st unix.Stat_t
		err := unix.Lstat(next, &st)
		if err == unix.ENOENT && el.via == "" {
			// The missing tail. Only elements of root itself remain (a
			// link's target is used up before them), and root is clean.
			tail := []string{next}
			for _, e := range todo {
				tail = append(tail, e.name)
			}
			return filepath.Join(tail...), nil
		}
		if err == unix.ENOENT {
			return "", messages.Errorf(messages.ErrBadSpec,
				"home %s: the symbolic link %s leads to %s, which does not exist; fix: create it, or give the real directory as the home",
				root, el.via, next)
		}
		if err != nil {
			return "", fmt.Errorf("open home %s: %w", root, &os.PathError{Op: "lstat", Path: next, Err: err})
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			resolved = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("open home %s: %w", root, &os.PathError{Op: "resolve", Path: next, Err: unix.ELOOP})
		}
		if err := checkLink(next, &st); err != nil {
			return "", err
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", fmt.Errorf("open home %s: %w", root, err)
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		todo = append(elements(target, next), todo...)
	}
	return resolved, nil
}

// element is one name of a path Canonical still has to resolve.
type element struct {
	name string
	via  string // the link whose target it comes from; "" for the home's own path
}

// elements splits p into its non-empty names, each marked as coming via.
func elements(p, via string) []element {
	var els []element
	for name := range strings.SplitSeq(p, "/") {
		if name != "" {
			els = append(els, element{name: name, via: via})
		}
	}
	return els
}

// checkLink judges a symbolic link met on the way to the home: it must
// belong to a trusted uid, and no other user may be able to replace it,
// through the directory holding it or any directory above.
func checkLink(link string, st *unix.Stat_t) error {
	if !TrustedUID(st.Uid) {
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s is a symbolic link owned by uid %d, not by uid %d or root, so that user decides where it leads; fix: give the real directory as the home (--home or BOXSUP_HOME)",
			link, st.Uid, os.Geteuid())
	}
	return checkDirsAbove(link, "the symbolic link "+link)
}
