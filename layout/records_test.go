package layout

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// createdBox returns a created box in a fresh home.
func createdBox(t *testing.T) Box {
	t.Helper()
	_, b := newBox(t, "web")
	if err := b.Create(); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpecRoundTrip(t *testing.T) {
	b := createdBox(t)
	withUmask(t, 0) // after the temporary directory: a 0777 one would be refused
	in := messages.StartBox{
		ID: "web",
		Spec: messages.InstanceSpec{
			Version: 1, Engine: messages.EngineProcess, BoxID: "web",
			GuestEntrypoint: messages.Entrypoint{Executable: "/bin/sleep", Args: []string{"60"}},
			Secrets:         []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret("s3cr3t-token")}},
		},
		Restart:     messages.RestartPolicy{Mode: messages.RestartOnFailure},
		StopTimeout: 3 * time.Second,
	}
	if err := b.WriteSpec(in); err != nil {
		t.Fatal(err)
	}
	assertMode(t, b.SpecPath(), 0o600)
	out, err := b.ReadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("ReadSpec = %#v, want %#v", out, in)
	}
	if got := out.Spec.Secrets[0].Value.Reveal(); got != "s3cr3t-token" {
		t.Errorf("secret read back as %q", got)
	}
}

func TestStateRoundTrip(t *testing.T) {
	b := createdBox(t)
	withUmask(t, 0) // after the temporary directory: a 0777 one would be refused
	now := time.Now().UTC().Truncate(time.Second)
	in := messages.StateRecord{
		ID: "web", State: messages.StateRunning, Generation: 4,
		Identity:  messages.Identity{PID: 1234, StartTime: 99, BootID: "boot"},
		Restarts:  2,
		LastExit:  &messages.ExitRecord{ExitCode: 1, Reason: "exited", FinishedAt: now},
		CreatedAt: now, StartedAt: now, UpdatedAt: now,
	}
	if err := b.WriteState(in); err != nil {
		t.Fatal(err)
	}
	assertMode(t, b.StatePath(), 0o600)
	out, err := b.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("ReadState = %+v, want %+v", out, in)
	}
}

func TestReadStateRejectsUnknownState(t *testing.T) {
	b := createdBox(t)
	content := `{"id":"web","state":"dancing"}`
	if err := os.WriteFile(b.StatePath(), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := b.ReadState()
	if !errors.Is(err, messages.ErrCorruptFile) {
		t.Fatalf("ReadState = %v, want ErrCorruptFile", err)
	}
}

// Truncated state.json and exit.json read as ErrCorruptFile and stay as they
// are, for a human to inspect.
func TestTruncatedRecordsAreCorruptAndUntouched(t *testing.T) {
	b := createdBox(t)
	now := time.Now().UTC()
	if err := b.WriteState(messages.StateRecord{ID: "web", State: messages.StateRunning, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(b.ExitPath(), messages.ExitRecord{ExitCode: 0, Reason: "exited", FinishedAt: now}, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		read func() error
	}{
		{b.StatePath(), func() error { _, err := b.ReadState(); return err }},
		{b.ExitPath(), func() error { _, err := b.ReadExit(); return err }},
	} {
		full, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.read(); err != nil {
			t.Fatalf("%s whole: %v", tc.path, err)
		}
		cut := string(full[:len(full)-7])
		if err := os.WriteFile(tc.path, []byte(cut), 0o600); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Hour).Truncate(time.Second)
		if err := os.Chtimes(tc.path, past, past); err != nil {
			t.Fatal(err)
		}
		if err := tc.read(); !errors.Is(err, messages.ErrCorruptFile) {
			t.Errorf("%s truncated: %v, want ErrCorruptFile", tc.path, err)
		}
		assertUntouched(t, tc.path, cut, past)
	}
}

func TestReadExitMissing(t *testing.T) {
	b := createdBox(t)
	if _, err := b.ReadExit(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadExit = %v, want fs.ErrNotExist", err)
	}
	if _, err := b.ReadState(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadState = %v, want fs.ErrNotExist", err)
	}
	if _, err := b.ReadSpec(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadSpec = %v, want fs.ErrNotExist", err)
	}
}

func TestRotateExit(t *testing.T) {
	b := createdBox(t)
	if err := b.RotateExit(); err != nil {
		t.Fatalf("RotateExit without exit.json: %v", err)
	}
	if _, err := os.Stat(b.PrevExitPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RotateExit without exit.json created %s", b.PrevExitPath())
	}
	for code := range 2 {
		if err := WriteJSON(b.ExitPath(), messages.ExitRecord{ExitCode: code}, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := b.RotateExit(); err != nil {
			t.Fatalf("RotateExit: %v", err)
		}
		if _, err := b.ReadExit(); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("exit.json still there after RotateExit: %v", err)
		}
		var prev messages.ExitRecord
		if err := ReadJSON(b.PrevExitPath(), &prev); err != nil || prev.ExitCode != code {
			t.Errorf("exit.previous.json = %+v, %v; want exit code %d", prev, err, code)
		}
	}
}
