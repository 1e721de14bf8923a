package boxlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/internal/testutil"
)

// shimBinary is the reference shim, built once by TestMain for the tests
// that run real boxes.
var shimBinary string

// TestMain builds the shim, runs the tests and checks that no goroutine
// (a follower, an inotify reader) outlived them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "boxlog-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if shimBinary, err = testutil.BuildShim(dir, raceEnabled); err != nil {
		_ = os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// deadline bounds the waits of these tests; a wait ends as soon as its
// condition holds.
const deadline = 20 * time.Second

// epoch is the time of the records the tests write: record n is at epoch+n s.
var epoch = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// stampOf formats record time n as a shim does.
func stampOf(n int) string {
	return epoch.Add(time.Duration(n) * time.Second).Format("2006-01-02T15:04:05.000000000Z07:00")
}

// rec is one record at time n.
func rec(n int, stream Stream, tag, text string) string {
	return stampOf(n) + " " + string(stream) + " " + tag + " " + text + "\n"
}

// lines are F records on stdout, one per number, at time = the number.
func lines(from, to int) string {
	var b bytes.Buffer
	for i := from; i <= to; i++ {
		b.WriteString(rec(i, Stdout, "F", strconv.Itoa(i)))
	}
	return b.String()
}

// seqText is what lines(from, to) reads back as.
func seqText(from, to int) string {
	var b bytes.Buffer
	for i := from; i <= to; i++ {
		b.WriteString(strconv.Itoa(i) + "\n")
	}
	return b.String()
}

// fakeShim writes and rotates a log in a directory the way the protocol
// says a shim does, step by step under the test's control.
type fakeShim struct {
	t        testing.TB
	dir      string
	maxFiles int
}

func newFakeShim(t testing.TB, maxFiles int) *fakeShim {
	return &fakeShim{t: t, dir: t.TempDir(), maxFiles: maxFiles}
}

func (s *fakeShim) path() string { return filepath.Join(s.dir, "console.log") }

func (s *fakeShim) name(k int) string {
	if k == 0 {
		return s.path()
	}
	return s.path() + "." + strconv.Itoa(k)
}

// write appends text to console.log (creating it 0600).
func (s *fakeShim) write(text string) {
	s.t.Helper()
	f, err := os.OpenFile(s.path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		s.t.Fatal(err)
	}
}

// rotate shifts the contiguous chain of rotated files up by one (the
// oldest dropped at maxFiles) and moves console.log to console.log.1; the
// next write creates a new console.log.
func (s *fakeShim) rotate() {
	s.t.Helper()
	last := s.maxFiles - 1
	m := 0
	for m < last {
		if _, err := os.Lstat(s.name(m + 1)); err != nil {
			break
		}
		m++
	}
	for k := min(m, last-1); k >= 1; k-- {
		if err := os.Rename(s.name(k), s.name(k+1)); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := os.Rename(s.path(), s.name(1)); err != nil {
		s.t.Fatal(err)
	}
}

// read copies the log with opts, failing the test on an error.
func read(t testing.TB, path string, opts Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := Copy(context.Background(), &b, path, opts); err != nil {
		t.Fatalf("Copy %+v: %v", opts, err)
	}
	return b.String()
}
