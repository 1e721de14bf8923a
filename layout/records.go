package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// secretFileMode is the mode of records that may hold secrets.
const secretFileMode = 0o600

// WriteSpec atomically writes the box's spec.json (mode 0600: it holds the
// spec's secrets). Never log s or the file's content.
func (b Box) WriteSpec(s messages.StartBox) error {
	return WriteJSON(b.SpecPath(), s, secretFileMode)
}

// ReadSpec reads the box's spec.json.
func (b Box) ReadSpec() (messages.StartBox, error) {
	var s messages.StartBox
	if err := ReadJSON(b.SpecPath(), &s); err != nil {
		return messages.StartBox{}, err
	}
	return s, nil
}

// WriteState atomically writes the box's state.json (mode 0600). It does not
// fsync: see WriteJSONVolatile for why a state record needs no durability
// beyond a crash of the supervisor process.
func (b Box) WriteState(s messages.StateRecord) error {
	return WriteJSONVolatile(b.StatePath(), s, secretFileMode)
}

// ReadState reads the box's state.json. A record whose state is not one of
// the known states is messages.ErrCorruptFile.
func (b Box) ReadState() (messages.StateRecord, error) {
	var s messages.StateRecord
	if err := ReadJSON(b.StatePath(), &s); err != nil {
		return messages.StateRecord{}, err
	}
	if !s.State.Valid() {
		return messages.StateRecord{}, messages.Errorf(messages.ErrCorruptFile, "%s: unknown state %q", b.StatePath(), s.State)
	}
	return s, nil
}

// ReadExit reads the exit.json the shim wrote. A missing file (the shim has
// not exited, or died without writing it) satisfies errors.Is(err,
// fs.ErrNotExist).
func (b Box) ReadExit() (messages.ExitRecord, error) {
	var e messages.ExitRecord
	if err := ReadJSON(b.ExitPath(), &e); err != nil {
		return messages.ExitRecord{}, err
	}
	return e, nil
}

// RotateExit renames exit.json to exit.previous.json, replacing an older one,
// so that the exit.json found after the next run was written by that run.
// Call it before spawning. No exit.json is not an error.
func (b Box) RotateExit() error {
	err := os.Rename(b.ExitPath(), b.PrevExitPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rotate exit record of box %q: %w", b.ID, err)
	}
	// Durable, or a crash could bring the old record back as this run's.
	if err := syncDir(filepath.Dir(b.ExitPath())); err != nil {
		return fmt.Errorf("rotate exit record of box %q: %w", b.ID, err)
	}
	return nil
}

// SetAsideState renames a damaged state.json to state.json.damaged-<UTC
// time>, keeping it for inspection, so that a fresh record can be written
// without destroying the evidence. It returns the new name; no state.json
// is not an error ("" is returned).
func (b Box) SetAsideState() (string, error) {
	if err := b.check(); err != nil {
		return "", err
	}
	aside := b.StatePath() + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	err := os.Rename(b.StatePath(), aside)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("set aside the state record of box %q: %w", b.ID, err)
	}
	return aside, nil
}
