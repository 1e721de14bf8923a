package boxlog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// step is one move of a scripted follow: once the reader has written
// exactly want and is about to wait for more, do runs (on the reader's
// goroutine, so the order of events is forced, not hoped for).
type step struct {
	want string
	do   func()
}

// followScript follows the log at path with opts, runs the steps in order
// as the output reaches each one's want, and, once they are all done,
// closes Ended. It returns the whole output and Copy's result.
func followScript(t *testing.T, path string, opts Options, steps []step) (string, error) {
	return followScriptWith(t, path, opts, hooks{}, steps)
}

// followScriptWith is followScript with hooks (waiting is the script's).
func followScriptWith(t *testing.T, path string, opts Options, h hooks, steps []step) (string, error) {
	t.Helper()
	ended := make(chan struct{})
	opts.Follow, opts.Ended = true, ended
	var out bytes.Buffer // written and read on the reader's goroutine only
	next, closed := 0, false
	h.waiting = func() {
		for next < len(steps) && out.String() == steps[next].want {
			steps[next].do()
			next++
		}
		if next == len(steps) && !closed {
			closed = true
			close(ended)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	err := copyLog(ctx, &out, path, opts, h)
	if next < len(steps) {
		t.Errorf("stopped before step %d (want %q), output %q", next, steps[next].want, out.String())
	}
	return out.String(), err
}

// TestFollowAcrossRotation: lines written to the file being read just
// before it is rotated away, two rotations while the reader waits, and a
// line continued across a rotation: each line once, in order.
func TestFollowAcrossRotation(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write(lines(1, 2))
	got, err := followScript(t, s.path(), Options{}, []step{
		{seqText(1, 2), func() { s.write(lines(3, 3)); s.rotate(); s.write(lines(4, 4)) }},
		{seqText(1, 4), func() { s.write(lines(5, 5)); s.rotate(); s.write(lines(6, 6)); s.rotate(); s.write(lines(7, 7)) }},
		{seqText(1, 7), func() { s.write(rec(8, Stdout, "P", "8a")); s.rotate(); s.write(rec(9, Stdout, "F", "8b")) }},
	})
	if err != nil || got != seqText(1, 7)+"8a8b\n" {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestFollowByPolling: without inotify the follower polls, with the same
// result.
func TestFollowByPolling(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write(lines(1, 2))
	got, err := followScriptWith(t, s.path(), Options{}, hooks{poll: true}, []step{
		{seqText(1, 2), func() { s.write(lines(3, 3)); s.rotate(); s.write(lines(4, 4)) }},
	})
	if err != nil || got != seqText(1, 4) {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestFollowFallingBehind: a file rotated out of the chain while the
// reader holds it open is still read to its end; only a file that was
// rotated away before the reader ever opened it is lost, and nothing is
// repeated.
func TestFollowFallingBehind(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 2)
	s.write(lines(1, 1))
	got, err := followScript(t, s.path(), Options{}, []step{
		{seqText(1, 1), func() { s.write(lines(2, 2)); s.rotate(); s.write(lines(3, 3)); s.rotate(); s.write(lines(4, 4)) }},
		{seqText(1, 4), func() {
			s.write(lines(5, 5))
			s.rotate()
			s.write(lines(6, 6)) // rotated away unread below
			s.rotate()
			s.write(lines(7, 7))
			s.rotate()
			s.write(lines(8, 8))
		}},
	})
	if want := seqText(1, 5) + "7\n8\n"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// TestFollowFromNothing: following a box that has no console yet waits for
// it; Since and Stream still apply to what comes.
func TestFollowFromNothing(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	got, err := followScript(t, s.path(), Options{Since: epoch.Add(2e9), Stream: Stderr}, []step{
		{"", func() {
			s.write(rec(1, Stderr, "F", "too early") + rec(2, Stdout, "F", "other stream") + rec(3, Stderr, "F", "shown"))
		}},
	})
	if err != nil || got != "shown\n" {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestFollowTailNone: with TailNone only what is written after the start
// is shown, including the rest of a line that was begun before.
func TestFollowTailNone(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write(lines(1, 3) + rec(4, Stdout, "P", "begun-"))
	got, err := followScript(t, s.path(), Options{Tail: TailNone}, []step{
		{"", func() { s.write(rec(5, Stdout, "F", "ended") + lines(6, 6)) }},
	})
	if err != nil || got != "ended\n6\n" {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestFollowEndsAndStops: a follower of a box already at rest reads to the
// end and returns nil; a cancelled context returns its error.
func TestFollowEndsAndStops(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write(lines(1, 2))
	ended := make(chan struct{})
	close(ended)
	var b bytes.Buffer
	if err := Copy(context.Background(), &b, s.path(), Options{Follow: true, Ended: ended, Tail: 1}); err != nil || b.String() != "2\n" {
		t.Errorf("ended before the start: %q, %v", b.String(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Reset()
	err := copyLog(ctx, &b, s.path(), Options{Follow: true}, hooks{waiting: cancel})
	if !errors.Is(err, context.Canceled) || b.String() != seqText(1, 2) {
		t.Errorf("cancelled: %q, %v", b.String(), err)
	}
}

// TestOpenClose: Open's reader gives the log and ends with io.EOF; Close
// ends a follower that nothing else would end (goleak checks that nothing
// is left).
func TestOpenClose(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write(lines(1, 2))
	r, err := Open(context.Background(), s.path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != seqText(1, 2) {
		t.Errorf("ReadAll: %q, %v", b, err)
	}
	must(t, r.Close())

	r, err = Open(context.Background(), s.path(), Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(seqText(1, 2)))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != seqText(1, 2) {
		t.Errorf("follower: %q, %v", buf, err)
	}
	must(t, r.Close())
	if _, err := r.Read(buf); err == nil {
		t.Error("Read after Close succeeded")
	}
}

// TestSnapshotRetriesWhenRotatedMidWalk: a rotation in the middle of the
// walk over the files (here forced right after console.log was opened)
// would make the walk meet a file twice and miss the new one; the check
// sees it and walks again.
func TestSnapshotRetriesWhenRotatedMidWalk(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	s.write(lines(1, 2))
	s.rotate()
	s.write(lines(3, 4))
	attempts := 0
	h := hooks{opened: func(attempt, index int) {
		attempts = attempt + 1
		if attempt == 0 && index == 0 {
			s.rotate()
			s.write(lines(5, 6))
		}
	}}
	var b bytes.Buffer
	if err := copyLog(context.Background(), &b, s.path(), Options{}, h); err != nil || b.String() != seqText(1, 6) {
		t.Errorf("got %q, %v", b.String(), err)
	}
	if attempts != 2 {
		t.Errorf("%d walks, want 2", attempts)
	}
}

// TestFollowManyRotations: many rotations of small files, one line each,
// with the reader woken by inotify between them: every line once, in order.
func TestFollowManyRotations(t *testing.T) {
	t.Parallel()
	s := newFakeShim(t, 3)
	const n = 200
	var steps []step
	for i := 1; i <= n; i++ {
		steps = append(steps, step{seqText(1, i-1), func() {
			s.write(lines(i, i))
			if i%3 == 0 {
				s.rotate()
			}
		}})
	}
	got, err := followScript(t, s.path(), Options{}, steps)
	if err != nil || got != seqText(1, n) {
		t.Errorf("got %d bytes (%v), want 1..%d", len(got), err, n)
	}
}
