package tests

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestEveryTestedPackageChecksForLeakedGoroutines keeps the rule that
// every package with tests runs them under goleak: a package whose test
// files never call goleak (VerifyTestMain, VerifyNone or Find, or
// testutil.LeaksAfterGrace) could leave a goroutine behind unnoticed. Two
// packages had slipped through before this test existed.
func TestEveryTestedPackageChecksForLeakedGoroutines(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{} // directory → some test file checks for leaks
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		checks := false
		for _, call := range []string{"goleak.VerifyTestMain(", "goleak.VerifyNone(", "goleak.Find(", "testutil.LeaksAfterGrace("} {
			checks = checks || bytes.Contains(src, []byte(call))
		}
		tested[dir] = tested[dir] || checks
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for dir, checks := range tested {
		if !checks {
			rel, _ := filepath.Rel(root, dir)
			missing = append(missing, rel)
		}
	}
	sort.Strings(missing)
	if len(tested) == 0 {
		t.Fatalf("found no test files under %s", root)
	}
	if len(missing) > 0 {
		t.Errorf("packages whose tests never check for leaked goroutines (add func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }): %s", strings.Join(missing, ", "))
	}
}
