package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestConsoleFinishDrainsThePipe: output still in the pipe when the guest
// has gone (here the stdout copier is held before its first read while
// finish begins) is read by the drain and written before finish returns.
func TestConsoleFinishDrainsThePipe(t *testing.T) {
	dir := t.TempDir()
	spec := &messages.InstanceSpec{ConsoleOutput: filepath.Join(dir, "console.log")}
	gate, held := make(chan struct{}), make(chan struct{})
	first := true
	c, err := newConsole(spec, t.Logf, func(stream string) {
		if stream == "stdout" && first {
			first = false
			close(held)
			<-gate
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if _, err := c.guestStdout.WriteString(want.String()); err != nil { // < 64 KiB: fits in the pipe
		t.Fatal(err)
	}
	<-held
	// The deadline is set while the copier is held before its read: that
	// read fails without reading, so only the drain can write the lines.
	c.beginFinish()
	close(gate)
	c.finish()
	raw, err := os.ReadFile(spec.ConsoleOutput)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		_, text, _ := strings.Cut(line, " stdout F ")
		got.WriteString(text + "\n")
	}
	if got.String() != want.String() {
		t.Errorf("console after finish: %d bytes of text, want %d", got.Len(), want.Len())
	}
}
