package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// maxSpecBytes caps the spec read from stdin. A real spec is a few KiB; the
// cap only stops a runaway writer from exhausting the shim's memory.
const maxSpecBytes = 16 << 20

// readSpecBytes reads stdin to EOF, the shim's first I/O: the supervisor
// writes the spec and closes its end, and the shim must drain it before it
// does anything that could make the supervisor wait.
func readSpecBytes(r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	if len(raw) > maxSpecBytes {
		return nil, fmt.Errorf("spec on stdin is larger than %d bytes", maxSpecBytes)
	}
	if len(raw) == 0 {
		return nil, errors.New("no spec on stdin (empty input)")
	}
	return raw, nil
}

// decodeSpec unmarshals the spec. Unknown fields are accepted so that a newer
// supervisor can add optional fields without breaking this shim; version
// is what announces an incompatible change (messages.InstanceSpec.Validate).
//
// Error texts never quote the input: it holds secrets. A JSON syntax error
// reports only its byte offset, a type error only the field and types.
func decodeSpec(raw []byte) (messages.InstanceSpec, error) {
	var spec messages.InstanceSpec
	err := json.Unmarshal(raw, &spec)
	if err == nil {
		return spec, nil
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return spec, fmt.Errorf("malformed JSON at byte offset %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		return spec, fmt.Errorf("field %q: JSON %s where %s was expected", typeErr.Field, typeErr.Value, typeErr.Type)
	default:
		return spec, errors.New("malformed JSON")
	}
}

// exitFileOf returns the spec's exit_file when it is usable, so that even a
// spec that fails validation gets its exit record written.
func exitFileOf(spec messages.InstanceSpec) string {
	if filepath.IsAbs(spec.ExitFile) && !strings.ContainsRune(spec.ExitFile, 0) {
		return spec.ExitFile
	}
	return ""
}

// checkSpec validates the spec and its agreement with argv. Validate's texts
// are safe to print: they name fields and paths, never secret values.
func checkSpec(spec *messages.InstanceSpec, argvID string) error {
	if err := spec.Validate(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), messages.ErrBadSpec.Error()+": "))
	}
	if spec.BoxID != argvID {
		return fmt.Errorf("box_id %q does not match --box-id %q", spec.BoxID, argvID)
	}
	if spec.Engine != messages.EngineProcess {
		return fmt.Errorf("engine %q is not handled by this shim (it runs %q)", spec.Engine, messages.EngineProcess)
	}
	return checkHonoured(spec)
}
