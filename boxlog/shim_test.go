package boxlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// startShim runs the reference shim on dir with a detached spec (no ready
// or keepalive pipe needed) for guest `sh -c script`, its stderr on
// shim.log. The returned channel is closed once the shim has exited.
func startShim(t *testing.T, dir, script string, rotation messages.LogRotation) (<-chan struct{}, *exec.Cmd) {
	t.Helper()
	spec := messages.InstanceSpec{
		Version: messages.SpecVersion, Engine: messages.EngineProcess, BoxID: filepath.Base(dir),
		GuestEntrypoint: messages.Entrypoint{Executable: "sh", Args: []string{"-c", script}, Env: []string{"PATH=" + os.Getenv("PATH")}, WorkDir: dir},
		ConsoleOutput:   filepath.Join(dir, "console.log"),
		ConsoleLog:      rotation,
		ExitFile:        filepath.Join(dir, "exit.json"),
		Detach:          true,
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.OpenFile(filepath.Join(dir, "shim.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(shimBinary, "--box-id", spec.BoxID)
	cmd.Stdin = bytes.NewReader(js)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	return exited, cmd
}

// TestFollowARealShimAcrossRotation: a real guest writes batches of lines
// through the reference shim into a console capped at 64 KiB × 3, each
// batch larger than a file, so that the shim rotates while the reader
// follows. The guest waits for the reader to acknowledge each batch, so the
// reader is never more than a batch behind (less than the files kept): then
// every line must arrive once, in order, and the follow ends when the shim
// has exited.
func TestFollowARealShimAcrossRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const batches, perBatch = 8, 2500 // ~110 KiB of records per batch
	script := fmt.Sprintf(`b=0
while [ $b -lt %[1]d ]; do
  seq $((b*%[2]d+1)) $((b*%[2]d+%[2]d))
  while [ ! -e ack$b ]; do sleep 0.01; done
  b=$((b+1))
done`, batches, perBatch)
	exited, cmd := startShim(t, dir, script, messages.LogRotation{MaxBytes: messages.MinLogMaxBytes, MaxFiles: 3})

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	r, err := Open(ctx, filepath.Join(dir, "console.log"), Options{Follow: true, Ended: exited})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	want := 1
	for sc.Scan() {
		if got := sc.Text(); got != strconv.Itoa(want) {
			t.Fatalf("line %q, want %d", got, want)
		}
		if want%perBatch == 0 {
			if err := os.WriteFile(filepath.Join(dir, "ack"+strconv.Itoa(want/perBatch-1)), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		want++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("after line %d: %v", want-1, err)
	}
	if want-1 != batches*perBatch {
		t.Fatalf("read %d lines, want %d", want-1, batches*perBatch)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("shim exit %d", code)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "console.log*"))
	if len(files) != 3 {
		t.Errorf("console files %v: the test did not make the shim rotate as intended", files)
	}
}
