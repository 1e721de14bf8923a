package guestenv

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/boxsup/boxsup/messages"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBuildOrdersEntriesSoThatTheSpecWins(t *testing.T) {
	t.Parallel()
	spec := &messages.InstanceSpec{
		GuestEntrypoint: messages.Entrypoint{Env: []string{"A=1"}},
		Secrets:         []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret("s3cret")}},
		Transport:       "unix:///t.sock",
		ReadyTransport:  "/r.sock",
		Security:        messages.SecurityOptions{SanitizeEnv: true},
	}
	want := []string{"PATH=" + MinimalPath, "A=1", "TOKEN=s3cret", ReadySocketEnv + "=/r.sock", TransportEnv + "=unix:///t.sock"}
	if got := Build(spec, true); !slices.Equal(got, want) {
		t.Fatalf("Build(spec, true) = %q; want %q", got, want)
	}
	noReady := slices.Delete(slices.Clone(want), 3, 4)
	if got := Build(spec, false); !slices.Equal(got, noReady) {
		t.Fatalf("Build(spec, false) = %q; want %q", got, noReady)
	}
	spec.Secrets = append(spec.Secrets, messages.SecretVar{Name: "PATH", Value: messages.NewSecret("/opt")})
	if got := Build(spec, false); got[0] == "PATH="+MinimalPath {
		t.Fatalf("a spec whose secret sets PATH still got the minimal PATH: %q", got)
	}
}

func TestLookPathSearchesOnlyAbsoluteEntriesOfTheGuestsPATH(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := LookPath("prog", []string{"PATH=.:relative:" + dir}); err != nil || got != prog {
		t.Fatalf("LookPath = %q, %v; want %q", got, err, prog)
	}
	if got, err := LookPath("./x/y", nil); err != nil || got != "./x/y" {
		t.Fatalf("a name with a slash: %q, %v; want it as given", got, err)
	}
	_, err := LookPath("prog", []string{"PATH=" + dir + "-missing"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("LookPath of a missing program = %v; want ErrNotFound", err)
	}
}
