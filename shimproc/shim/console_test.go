package shim_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/messages"
)

// recordRE is one console record as docs/SHIM-PROTOCOL.md defines it: fixed
// width RFC 3339 time in UTC, stream, tag, text.
var recordRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([PF]) (.*)$`)

// consoleText reads a console log through boxlog, as boxsup logs would.
func consoleText(t testing.TB, path string, opts boxlog.Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := boxlog.Copy(context.Background(), &b, path, opts); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b.String()
}

// consoleFiles returns the names of the console's files in dir.
func consoleFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "console.log") {
			names = append(names, e.Name())
		}
	}
	return names
}

// checkCapped fails unless every file of the log at path is a 0600 regular
// file of at most maxBytes, and no more than maxFiles exist.
func checkCapped(t testing.TB, dir, base string, maxBytes int64, maxFiles int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Name() != base && !strings.HasPrefix(e.Name(), base+".") {
			continue
		}
		n++
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a 0600 regular file", e.Name(), fi.Mode())
		}
		if fi.Size() > maxBytes {
			t.Errorf("%s: %d bytes, over the cap of %d", e.Name(), fi.Size(), maxBytes)
		}
	}
	if n > maxFiles {
		t.Errorf("%d files of %s, want at most %d", n, base, maxFiles)
	}
}

// checkSequenceTail fails unless text is the lines from..to of `seq`, each
// once, in order.
func checkSequenceTail(t testing.TB, text string, from, to int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != to-from+1 {
		t.Fatalf("got %d lines, want %d (%d..%d); first %q, last %q", len(lines), to-from+1, from, to, lines[0], lines[len(lines)-1])
	}
	for i, l := range lines {
		if l != strconv.Itoa(from+i) {
			t.Fatalf("line %d is %q, want %d", i, l, from+i)
		}
	}
}

// The console holds one record per line of each stream, in the documented
// format, 0600; a line without a newline is a P record, which the reader
// joins with what follows.
func TestConsoleRecordsKeepTheStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "streams", "sh", "-c", `echo out-1; echo err-1 >&2; printf 'no-'; printf 'newline'`), launch{})
	if code := r.wait(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, r.log())
	}
	raw := readFile(t, filepath.Join(dir, "console.log"))
	var stdout, stderr strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(raw, "\n"), "\n") {
		m := recordRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a record: %q in\n%s", line, raw)
		}
		out := &stdout
		if m[1] == "stderr" {
			out = &stderr
		}
		out.WriteString(m[3])
		if m[2] == "F" {
			out.WriteString("\n")
		}
	}
	if stdout.String() != "out-1\nno-newline" || stderr.String() != "err-1\n" {
		t.Errorf("stdout %q, stderr %q; console:\n%s", stdout.String(), stderr.String(), raw)
	}
	if got := consoleText(t, filepath.Join(dir, "console.log"), boxlog.Options{Stream: boxlog.Stderr}); got != "err-1\n" {
		t.Errorf("reader, stderr only: %q", got)
	}
	checkCapped(t, dir, "console.log", messages.DefaultConsoleLogMaxBytes, 1)
}

// A guest writing as fast as it can never takes the console past its cap:
// the files are rotated at record boundaries, at most max_files remain, and
// what remains is the end of the output, whole, once the shim has exited.
func TestConsoleCappedForAFastWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 300000 // about 2 MB of text, 12 MB of records
	spec := newSpec(dir, "firehose", "seq", "1", strconv.Itoa(n))
	spec.ConsoleLog = messages.LogRotation{MaxBytes: messages.MinLogMaxBytes, MaxFiles: 3}
	r := startShim(t, dir, spec, launch{})
	if code := r.wait(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, r.log())
	}
	checkCapped(t, dir, "console.log", messages.MinLogMaxBytes, 3)
	if got := consoleFiles(t, dir); len(got) != 3 {
		t.Fatalf("console files %v, want console.log and two rotated", got)
	}
	text := consoleText(t, filepath.Join(dir, "console.log"), boxlog.Options{})
	first, err := strconv.Atoi(text[:strings.IndexByte(text, '\n')])
	if err != nil {
		t.Fatalf("first line of the kept output: %v", err)
	}
	checkSequenceTail(t, text, first, n)
}

// Everything the guest wrote is in the console before exit.json exists: the
// shim drains the pipes after the guest's exit, even a burst far larger than
// a pipe holds, written just before exiting.
func TestConsoleDrainedBeforeTheExitRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 50000
	r := startShim(t, dir, newSpec(dir, "burst", "sh", "-c", fmt.Sprintf("seq 1 %d; seq 1 %d >&2; exit 4", n, n)), launch{})
	if code := r.wait(); code != 4 {
		t.Fatalf("exit %d; log:\n%s", code, r.log())
	}
	r.exitRecord()
	for _, s := range []boxlog.Stream{boxlog.Stdout, boxlog.Stderr} {
		checkSequenceTail(t, consoleText(t, r.spec.ConsoleOutput, boxlog.Options{Stream: s}), 1, n)
	}
}

// When the shim cannot keep up (here: it is stopped), the pipe fills and the
// guest blocks in write(2) instead of losing output; once the shim runs
// again every line arrives.
func TestConsoleBackpressureBlocksTheGuest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 200000 // over 1 MB: far more than a pipe holds
	r := startShim(t, dir, newSpec(dir, "blocked", "sh", "-c", fmt.Sprintf("exec seq 1 %d", n)), launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	if err := syscall.Kill(r.pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(r.pid(), syscall.SIGCONT)
		}
	}()
	guest := r.guestPID()
	waitFor(t, "the guest to block writing to the full pipe", func() bool {
		// pipe_write, or anon_pipe_write since Linux 6.15
		return strings.HasSuffix(procFile(guest, "wchan"), "pipe_write")
	})
	if err := syscall.Kill(r.pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	if code := r.wait(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, r.log())
	}
	checkSequenceTail(t, consoleText(t, r.spec.ConsoleOutput, boxlog.Options{}), 1, n)
}

// A process that left the box's process group (setsid) and keeps writing
// to the console does not keep the shim from finishing: the drain reads
// what is there, not until EOF. Once the shim is gone the writer gets
// EPIPE/SIGPIPE, as under conmon.
func TestConsoleEscapedWriterDoesNotHoldTheShim(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "escaped.pid")
	script := fmt.Sprintf(`setsid sh -c 'echo $$ > %[1]s; exec yes escaped' & while [ ! -s %[1]s ]; do sleep 0.01; done; echo guest-done`, pidFile)
	r := startShim(t, dir, newSpec(dir, "escapee", "sh", "-c", script), launch{})
	var escaped int
	t.Cleanup(func() {
		if escaped > 0 {
			_ = syscall.Kill(escaped, syscall.SIGKILL)
		}
	})
	code := r.wait()
	if b, err := os.ReadFile(pidFile); err == nil {
		escaped, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if code != 0 || escaped == 0 {
		t.Fatalf("exit %d, escaped pid %d; log:\n%s", code, escaped, r.log())
	}
	r.exitRecord()
	waitFor(t, "the escaped writer to die of the closed pipe", func() bool { return !alive(escaped) })
	if got := consoleText(t, r.spec.ConsoleOutput, boxlog.Options{}); !strings.Contains(got, "guest-done\n") {
		t.Errorf("the guest's own line is missing from the console")
	}
}

// A console.log that is a symbolic link is refused (setup failed, exit 125)
// and its target is left alone.
func TestConsoleSymlinkRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	r := startShim(t, dir, newSpec(dir, "linked", "sh", "-c", "echo planted"), launch{})
	if code := r.wait(); code != 125 {
		t.Fatalf("exit %d, want 125; log:\n%s", code, r.log())
	}
	if rec := r.exitRecord(); !strings.HasPrefix(rec.Reason, "setup failed: console_output") {
		t.Errorf("reason %q", rec.Reason)
	}
	if got := readFile(t, target); got != "keep\n" {
		t.Errorf("the symlink's target was written: %q", got)
	}
}

// A console.log whose last line was cut (a shim killed in the middle of a
// write) is ended with a newline before the next shim's first record, and
// rotated files beyond max_files that a larger setting left are removed.
func TestConsoleTornEndAndStaleFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	torn := "2026-01-02T03:04:05.000000000Z stdout F cut-sh"
	if err := os.WriteFile(filepath.Join(dir, "console.log"), []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 2, 3, 4} {
		if err := os.WriteFile(filepath.Join(dir, "console.log."+strconv.Itoa(k)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	spec := newSpec(dir, "torn", "echo", "next")
	spec.ConsoleLog = messages.LogRotation{MaxFiles: 3}
	r := startShim(t, dir, spec, launch{})
	if code := r.wait(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, r.log())
	}
	raw := readFile(t, filepath.Join(dir, "console.log"))
	if !strings.HasPrefix(raw, torn+"\n") || !recordRE.MatchString(strings.TrimSuffix(raw[len(torn)+1:], "\n")) {
		t.Errorf("console:\n%q", raw)
	}
	if got := strings.Join(consoleFiles(t, dir), " "); got != "console.log console.log.1 console.log.2" {
		t.Errorf("console files %s, want the stale .3 and .4 removed", got)
	}
}

// shim.log is capped too: the shim rotates it when its lines would not fit,
// and moves the new file onto its fds 1 and 2, so that even the runtime's
// own writes (a panic) go there.
func TestShimLogCapped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := bytes.Repeat([]byte("an earlier run's line, long enough to fill the file quickly\n"), 1200) // 70 KiB
	if err := os.WriteFile(filepath.Join(dir, "shim.log"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shim.log.2"), []byte("stale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := newSpec(dir, "capped", "sleep", "30")
	spec.ShimLog = messages.LogRotation{MaxBytes: messages.MinLogMaxBytes, MaxFiles: 2}
	r := startShim(t, dir, spec, launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	// The shim writes its first lines, and so rotates shim.log, after the
	// ready byte: wait for this run's first line.
	waitFor(t, "this run's first line in the new shim.log", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "shim.log"))
		return err == nil && strings.Contains(string(b), "guest started")
	})
	var fd2, current syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/fd/2", r.pid()), &fd2); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(dir, "shim.log"), &current); err != nil {
		t.Fatal(err)
	}
	if fd2.Ino != current.Ino {
		t.Errorf("the shim's fd 2 is not the new shim.log")
	}
	if err := syscall.Kill(r.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r.wait()
	if got := readFile(t, filepath.Join(dir, "shim.log.1")); got != string(old) {
		t.Errorf("shim.log.1 is not the earlier log (%d bytes)", len(got))
	}
	if got := r.log(); !strings.Contains(got, "guest started") || !strings.Contains(got, "ended") {
		t.Errorf("the new shim.log lacks this run's lines:\n%s", got)
	}
	if fileExists(filepath.Join(dir, "shim.log.2")) {
		t.Error("shim.log.2 is beyond max_files 2 and should be gone")
	}
	if fi, err := os.Stat(filepath.Join(dir, "shim.log")); err != nil || fi.Size() > messages.MinLogMaxBytes || fi.Mode().Perm() != 0o600 {
		t.Errorf("shim.log: %v %v", fi, err)
	}
}

// A guest that prints its secret: the secret is in the console, which is
// 0600 (rotated files too), and nowhere else the shim writes.
func TestPrintedSecretStaysInTheConsole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := newSpec(dir, "blabber", "sh", "-c", `seq 1 3000; echo "token=$TOKEN"; echo "token=$TOKEN" >&2`)
	spec.Secrets = []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret(secretSentinel)}}
	spec.ConsoleLog = messages.LogRotation{MaxBytes: messages.MinLogMaxBytes, MaxFiles: 5}
	r := startShim(t, dir, spec, launch{})
	if code := r.wait(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, r.log())
	}
	checkCapped(t, dir, "console.log", messages.MinLogMaxBytes, 5)
	if len(consoleFiles(t, dir)) < 2 {
		t.Errorf("the console was not rotated: the rotated files' mode is untested")
	}
	if got := consoleText(t, spec.ConsoleOutput, boxlog.Options{}); strings.Count(got, "token="+secretSentinel+"\n") != 2 {
		t.Errorf("positive control: the console lacks the printed secret")
	}
	for _, where := range []string{r.stderr, spec.ExitFile} {
		if strings.Contains(readFile(t, where), secretSentinel) {
			t.Errorf("%s contains the secret", where)
		}
	}
}
