package boxlog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// TestCopyOptions: both streams as a terminal would show them (a P record
// joined with what follows), one stream, times, since, tail; a line that is
// not a record (an older shim's raw output) is shown as it is.
func TestCopyOptions(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write("legacy raw line\n" +
		rec(1, Stdout, "F", "a") +
		rec(2, Stderr, "F", "e1") +
		rec(3, Stdout, "P", "b") +
		rec(4, Stdout, "F", "c") +
		rec(5, Stderr, "F", "e2") +
		rec(6, Stdout, "P", "d") +
		rec(7, Stderr, "F", "e3") +
		rec(8, Stdout, "F", "f"))
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"all", Options{}, "legacy raw line\na\ne1\nbc\ne2\nde3\nf\n"},
		{"stdout", Options{Stream: Stdout}, "a\nbc\ndf\n"},
		{"stderr", Options{Stream: Stderr}, "e1\ne2\ne3\n"},
		{"timestamps", Options{Stream: Stdout, Timestamps: true}, stampOf(1) + " a\n" + stampOf(3) + " bc\n" + stampOf(6) + " df\n"},
		{"since", Options{Since: epoch.Add(4 * 1e9)}, "e2\nde3\nf\n"},
		{"since, stdout", Options{Since: epoch.Add(4 * 1e9), Stream: Stdout}, "df\n"},
		{"tail", Options{Tail: 2}, "de3\nf\n"},
		{"tail, stderr", Options{Tail: 2, Stream: Stderr}, "e2\ne3\n"},
		{"tail beyond the log", Options{Tail: 100}, "legacy raw line\na\ne1\nbc\ne2\nde3\nf\n"},
		{"tail none", Options{Tail: TailNone}, ""},
		{"tail and since", Options{Tail: 10, Since: epoch.Add(5 * 1e9), Stream: Stderr}, "e2\ne3\n"},
	} {
		if got := read(t, s.path(), c.opts); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestCopyRotatedFilesOldestFirst: the rotated files come before
// console.log, oldest first, and tail and since count across them.
func TestCopyRotatedFilesOldestFirst(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write(lines(1, 3))
	s.rotate()
	s.write(lines(4, 6))
	s.rotate()
	s.write(lines(7, 9))
	if got := read(t, s.path(), Options{}); got != seqText(1, 9) {
		t.Errorf("all: %q", got)
	}
	if got := read(t, s.path(), Options{Tail: 5}); got != seqText(5, 9) {
		t.Errorf("tail 5: %q", got)
	}
	if got := read(t, s.path(), Options{Since: epoch.Add(2 * 1e9), Tail: 100}); got != seqText(2, 9) {
		t.Errorf("since 2: %q", got)
	}
	s.rotate()
	s.write(lines(10, 10))
	if got := read(t, s.path(), Options{}); got != seqText(4, 10) {
		t.Errorf("after the oldest file was dropped: %q", got)
	}
}

// TestCopyLongRecord: a record longer than the reader's buffer is read in
// pieces and still counts as one line, of its stream.
func TestCopyLongRecord(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	long := strings.Repeat("x", 3*scanBufSize+17)
	s.write(rec(1, Stdout, "F", "before") + rec(2, Stderr, "P", long) + rec(3, Stderr, "F", "!") + rec(4, Stdout, "F", "after"))
	if got := read(t, s.path(), Options{Stream: Stderr}); got != long+"!\n" {
		t.Errorf("stderr: %d bytes, want %d", len(got), len(long)+2)
	}
	if got := read(t, s.path(), Options{Tail: 2, Timestamps: true}); got != stampOf(2)+" "+long+"!\n"+stampOf(4)+" after\n" {
		t.Errorf("tail 2 with times: %.80q...", got)
	}
}

// TestCopyUnterminatedEnd: the current file's unterminated end is not shown
// (its writer may be finishing it); a rotated file's is (it is final).
func TestCopyUnterminatedEnd(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	cut := strings.TrimSuffix(rec(2, Stdout, "F", "cut"), "\n")
	s.write(rec(1, Stdout, "F", "one") + cut)
	if got := read(t, s.path(), Options{}); got != "one\n" {
		t.Errorf("current file: %q", got)
	}
	s.rotate()
	s.write(rec(3, Stdout, "F", "three"))
	if got := read(t, s.path(), Options{}); got != "one\ncut\nthree\n" {
		t.Errorf("rotated file: %q", got)
	}
}

// TestCopyMissing: a box without a console yet reads as empty; a missing
// directory is ErrNotFound; options that cannot be honoured are refused.
func TestCopyMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if got := read(t, filepath.Join(dir, "console.log"), Options{}); got != "" {
		t.Errorf("no console: %q", got)
	}
	if err := Copy(context.Background(), io.Discard, filepath.Join(dir, "gone", "console.log"), Options{}); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("missing directory: %v", err)
	}
	for _, o := range []Options{{Stream: "both"}, {Tail: -2}} {
		if _, err := Open(context.Background(), filepath.Join(dir, "console.log"), o); !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%+v: %v, want ErrBadSpec", o, err)
		}
	}
}

// TestRefusesUntrustedFiles: a symbolic link, a FIFO (without blocking), a
// file others may write, a file of another user, a directory others may
// write: each is refused with ErrUnsafeHome, and nothing is read.
func TestRefusesUntrustedFiles(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		root  bool
		plant func(t *testing.T, s *fakeShim)
	}{
		{"symlink", false, func(t *testing.T, s *fakeShim) {
			secret := filepath.Join(t.TempDir(), "elsewhere")
			must(t, os.WriteFile(secret, []byte(rec(1, Stdout, "F", "not yours")), 0o600))
			must(t, os.Symlink(secret, s.path()))
		}},
		{"fifo", false, func(t *testing.T, s *fakeShim) {
			s.write(lines(1, 1))
			must(t, unix.Mkfifo(s.name(1), 0o600))
		}},
		{"writable by others", false, func(t *testing.T, s *fakeShim) {
			s.write(lines(1, 1))
			must(t, os.Chmod(s.path(), 0o622))
		}},
		{"another user's", true, func(t *testing.T, s *fakeShim) {
			s.write(lines(1, 1))
			s.rotate()
			s.write(lines(2, 2))
			must(t, os.Chown(s.name(1), 65534, 65534))
		}},
		{"directory writable by others", false, func(t *testing.T, s *fakeShim) {
			s.write(lines(1, 1))
			must(t, os.Chmod(s.dir, 0o777))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a file to another user")
			}
			s := newFakeShim(t, 3)
			c.plant(t, s)
			var b bytes.Buffer
			err := Copy(context.Background(), &b, s.path(), Options{})
			if !errors.Is(err, messages.ErrUnsafeHome) || b.Len() != 0 {
				t.Errorf("got %v and %q, want ErrUnsafeHome and nothing", err, b.String())
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
