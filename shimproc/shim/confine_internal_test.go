package shim

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// shimGone tells a shim that merely finished sending the plan (it shut its
// writing side down) from one that is gone (its end closed).
func TestShimGone(t *testing.T) {
	t.Parallel()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	init := os.NewFile(uintptr(fds[1]), "init-end")
	defer init.Close()
	if shimGone(init) {
		t.Error("shim reported gone while its end is open")
	}
	if err := unix.Shutdown(fds[0], unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if shimGone(init) {
		t.Error("shim reported gone after it only shut its writing side down")
	}
	if err := unix.Close(fds[0]); err != nil {
		t.Fatal(err)
	}
	// The hang-up comes when the last copy of the shim's end closes: a
	// process another test forked just before the close holds one until
	// its exec (CI saw shimGone false right after the close). Wait for the
	// event, then ask.
	pfd := []unix.PollFd{{Fd: int32(init.Fd()), Events: 0}}
	for {
		if _, err := unix.Poll(pfd, 10_000); err != unix.EINTR {
			break
		}
	}
	if !shimGone(init) {
		t.Error("shim not reported gone after its end closed")
	}
}

// The init's report decodes to the right class of failure.
func TestDecodeInitReport(t *testing.T) {
	t.Parallel()
	cases := []struct {
		report string
		code   int
		reason string
	}{
		{"X", 0, ""},
		{"", ExitUsage, "setup failed: the confining init ended before it reached the guest"},
		{`{"step":"setuid 65534","error":"operation not permitted"}`, ExitUsage, "setup failed: setuid 65534: operation not permitted"},
		{`{"step":"chdir /x","error":"permission denied","exec":true}`, ExitExecFailed, "exec failed: chdir /x: permission denied"},
		{`X{"step":"exec /bin/x","error":"exec format error","exec":true}`, ExitExecFailed, "exec failed: exec /bin/x: exec format error"},
		{`garbage`, ExitUsage, "setup failed: the confining init sent a malformed report"},
	}
	for _, c := range cases {
		se := decodeInitReport([]byte(c.report))
		switch {
		case c.code == 0 && se != nil:
			t.Errorf("%q: %v, want success", c.report, se)
		case c.code != 0 && (se == nil || se.code != c.code || se.reason != c.reason):
			t.Errorf("%q: %+v, want %d %q", c.report, se, c.code, c.reason)
		}
	}
}
