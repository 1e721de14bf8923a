package shimproc

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// trapper is a child process of the test (a shell, in its own process group)
// that records the signals it gets: SIGTERM writes "term" and exits, SIGUSR1
// writes "usr1". SIGUSR1 serves as a barrier: signals are delivered lowest
// number first and SIGKILL is acted on at once, so once the usr1 file appears
// any SIGKILL or SIGTERM sent before it would have shown.
type trapper struct {
	pid int
	dir string
}

func startTrapper(t *testing.T) *trapper {
	t.Helper()
	dir := t.TempDir()
	script := `trap 'echo term > ` + dir + `/term; exit 0' TERM
trap 'echo usr1 > ` + dir + `/usr1' USR1
: > ` + dir + `/ready
while :; do /bin/sleep 0.05; done`
	cmd := startChild(t, "/bin/sh", "-c", script)
	tr := &trapper{pid: cmd.Process.Pid, dir: dir}
	waitFor(t, 10*time.Second, "the trapper to install its traps", func() bool { return tr.has("ready") })
	return tr
}

// has reports whether the trapper wrote the named file.
func (tr *trapper) has(name string) bool {
	_, err := os.Stat(filepath.Join(tr.dir, name))
	return err == nil
}

// assertUntouched fails unless the trapper is alive and got neither SIGTERM
// nor SIGKILL before the SIGUSR1 barrier.
func (tr *trapper) assertUntouched(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(tr.pid, syscall.SIGUSR1); err != nil {
		t.Fatalf("the trapper %d is gone: %v", tr.pid, err)
	}
	waitFor(t, 10*time.Second, "the trapper to answer SIGUSR1", func() bool { return tr.has("usr1") || !alive(tr.pid) })
	if !alive(tr.pid) {
		t.Fatalf("the trapper %d was killed", tr.pid)
	}
	if tr.has("term") {
		t.Fatalf("the trapper %d got SIGTERM", tr.pid)
	}
}
