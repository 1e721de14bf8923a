package actors

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// FindShim returns the path of the reference shim: ShimBinaryName beside
// the running executable, else in the first directory of PATH that holds
// one. A candidate must pass shimproc.CheckShimBinary: one that another
// user owns, or could replace (its directory, or one above, writable by
// others), would receive every secret of the boxes it runs, so it is
// skipped and the search goes on. A relative PATH entry is not searched:
// what it names depends on the working directory (exec.ErrDot). It returns
// messages.ErrShimNotFound when no candidate passes, naming each one that
// was skipped and why.
//
// The path returned is the candidate as found; it is checked again at
// every use (shimproc.Start, shimproc.Capabilities), since it may change
// after FindShim returns.
func FindShim() (string, error) {
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), ShimBinaryName))
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.IsAbs(dir) {
			candidates = append(candidates, filepath.Join(dir, ShimBinaryName))
		}
	}
	var skipped []string
	seen := map[string]bool{}
	for _, p := range candidates {
		if seen[p] {
			continue
		}
		seen[p] = true
		if _, err := os.Stat(p); err != nil {
			continue // none here
		}
		if _, err := shimproc.CheckShimBinary(p); err != nil {
			skipped = append(skipped, strings.TrimPrefix(err.Error(), messages.ErrShimNotFound.Error()+": "))
			continue
		}
		return p, nil
	}
	if len(skipped) > 0 {
		return "", messages.Errorf(messages.ErrShimNotFound, "%s: none beside the executable or on PATH can be used; skipped: %s",
			ShimBinaryName, strings.Join(skipped, "; "))
	}
	return "", messages.Errorf(messages.ErrShimNotFound, "%s (not beside the executable nor on PATH)", ShimBinaryName)
}
