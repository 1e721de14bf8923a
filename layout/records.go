package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// secretFileMode is the mode of records that may hold secrets.
const secretFileMode = 0o600

// WriteSpec atomically and durably writes the box's spec.json (mode 0600: it
// holds the spec's secrets). Never log s or the file's content.
func (b Box) WriteSpec(s messages.StartBox) error {
	return b.writeRecord(specFileName, s, true)
}

// ReadSpec reads the box's spec.json. A spec.json that is a symbolic link,
// not a regular file, owned by another user than this one or root, or
// readable or writable by group or others is messages.ErrUnsafeHome: it may
// have been planted, so the caller must not act on it (a box whose spec
// cannot be trusted is damaged, like one whose spec is corrupt). Invalid
// content is messages.ErrCorruptFile; a missing file satisfies
// errors.Is(err, fs.ErrNotExist).
func (b Box) ReadSpec() (messages.StartBox, error) {
	var s messages.StartBox
	if err := b.readRecord(specFileName, &s, privateFile); err != nil {
		return messages.StartBox{}, err
	}
	return s, nil
}

// WriteState atomically writes the box's state.json (mode 0600). It does not
// fsync: see WriteJSONVolatile for why a state record needs no durability
// beyond a crash of the supervisor process.
func (b Box) WriteState(s messages.StateRecord) error {
	return b.writeRecord(stateFileName, s, false)
}

// ReadState reads the box's state.json, with ReadSpec's checks (an untrusted
// file is messages.ErrUnsafeHome). A record whose state is not one of the
// known states is messages.ErrCorruptFile.
func (b Box) ReadState() (messages.StateRecord, error) {
	var s messages.StateRecord
	if err := b.readRecord(stateFileName, &s, privateFile); err != nil {
		return messages.StateRecord{}, err
	}
	if !s.State.Valid() {
		return messages.StateRecord{}, messages.Errorf(messages.ErrCorruptFile, "%s: unknown state %q", b.StatePath(), s.State)
	}
	return s, nil
}

// ReadExit reads the exit.json the shim wrote. A missing file (the shim has
// not exited, or died without writing it) satisfies errors.Is(err,
// fs.ErrNotExist). A symbolic link, a file owned by another user than this
// one or root, or one writable by group or others is messages.ErrUnsafeHome.
func (b Box) ReadExit() (messages.ExitRecord, error) {
	var e messages.ExitRecord
	if err := b.readRecord(exitFileName, &e, sharedFile); err != nil {
		return messages.ExitRecord{}, err
	}
	return e, nil
}

// RotateExit renames exit.json to exit.previous.json, replacing an older one,
// so that the exit.json found after the next run was written by that run.
// Call it before spawning. No exit.json is not an error.
func (b Box) RotateExit() error {
	dir, err := b.openDir()
	if err != nil {
		return fmt.Errorf("rotate exit record of box %q: %w", b.ID, err)
	}
	defer dir.Close()
	err = renameAt(dir, exitFileName, prevExitFileName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rotate exit record of box %q: %w", b.ID, err)
	}
	// Durable, or a crash could bring the old record back as this run's.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("rotate exit record of box %q: %w", b.ID, err)
	}
	return nil
}

// writeRecord writes name in the checked box directory (0600).
func (b Box) writeRecord(name string, v any, durable bool) error {
	dir, err := b.openDir()
	if err != nil {
		return fmt.Errorf("write %s: %w", b.Dir+"/"+name, err)
	}
	defer dir.Close()
	return writeJSONAt(dir, name, v, secretFileMode, durable)
}

// readRecord reads name from the checked box directory, checking the file
// against rule first.
func (b Box) readRecord(name string, v any, rule fileRule) error {
	dir, err := b.openDir()
	if err != nil {
		var me *messages.Error
		if errors.As(err, &me) {
			return err
		}
		return fmt.Errorf("read %s: %w", b.Dir+"/"+name, unwrapPath(err))
	}
	defer dir.Close()
	return readJSONAt(dir, name, v, &rule)
}

// SetAsideState renames a damaged state.json to state.json.damaged-<UTC
// time> in the box directory, keeping it for inspection, so that a fresh
// record can be written without destroying the evidence. It returns the new
// name; no state.json is not an error ("" is returned).
func (b Box) SetAsideState() (string, error) {
	dir, err := b.openDir()
	if err != nil {
		return "", fmt.Errorf("set aside the state record of box %q: %w", b.ID, err)
	}
	defer dir.Close()
	aside := stateFileName + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	err = renameAt(dir, stateFileName, aside)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("set aside the state record of box %q: %w", b.ID, err)
	}
	return b.Dir + "/" + aside, nil
}
