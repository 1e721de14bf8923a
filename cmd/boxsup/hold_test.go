package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestForegroundRunThroughSuperviseDiesWithTheCommand: a foreground run
// served by a boxsup supervise holds its box for the life of its
// connection: when the command is SIGKILLed the box stops, and with --rm it
// is removed (issue: it ran on until supervise exited, and was never
// removed). Without supervise it stops the same way (the command's own
// supervisor dies with it).
func TestForegroundRunThroughSuperviseDiesWithTheCommand(t *testing.T) {
	for _, remove := range []bool{false, true} {
		name := "keep"
		if remove {
			name = "rm"
		}
		t.Run(name, func(t *testing.T) {
			e := newSupervisedEnv(t)
			args := []string{"--home", e.home, "run", "--name", "held"}
			if remove {
				args = append(args, "--rm")
			}
			args = append(args, "-e", markEnv+"=1", "--", "sh", "-c", "echo up; exec sleep 1000")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := exec.CommandContext(ctx, boxsupBin, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the held box to run", func() bool { return e.ps()["held"].State == "running" })
			pid := e.ps()["held"].PID
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if remove {
				eventually(t, "the box of a killed `run --rm` to be removed", func() bool {
					_, err := os.Stat(filepath.Join(e.home, "boxes", "held"))
					return os.IsNotExist(err)
				})
			} else {
				eventually(t, "the box of a killed `run` to stop", func() bool {
					st := e.ps()["held"].State
					return st == "exited" || st == "failed"
				})
			}
			eventually(t, "the box's shim to be gone", func() bool { return !processAlive(pid) })
			if strings.Contains(out.String(), "panic") {
				t.Fatalf("output: %s", out.String())
			}
		})
	}
}
