package messages

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrorCode names a class of failure. The codes are constants: they are the
// sentinels themselves (ErrNotFound is an ErrorCode), so nobody can reassign
// one, and they are what errors.Is compares, so an error that crossed a
// process boundary as JSON still matches its sentinel:
//
//	if errors.Is(err, messages.ErrNotFound) { ... }
//
// An ErrorCode is also an error, whose text is the class's description.
type ErrorCode string

// The error codes boxsup returns. Compare with errors.Is, never with ==:
// the errors returned are *Error values carrying one of these codes.
const (
	ErrInvalidID        ErrorCode = "invalid_id"
	ErrNotFound         ErrorCode = "not_found"
	ErrAlreadyExists    ErrorCode = "already_exists"
	ErrShimNotFound     ErrorCode = "shim_not_found"
	ErrReadyTimeout     ErrorCode = "ready_timeout"
	ErrIdentityMismatch ErrorCode = "identity_mismatch"
	ErrHomeLocked       ErrorCode = "home_locked"
	ErrBadSpec          ErrorCode = "bad_spec"
	ErrStartFailed      ErrorCode = "start_failed"
	ErrCorruptFile      ErrorCode = "corrupt_file"
	ErrNotSocket        ErrorCode = "not_socket"
	ErrBusy             ErrorCode = "busy"
	ErrNotRunning       ErrorCode = "not_running"
	ErrShuttingDown     ErrorCode = "shutting_down"
	ErrCgroup           ErrorCode = "cgroup"
	ErrTimeout          ErrorCode = "timeout"
	ErrInternal         ErrorCode = "internal"
	// ErrUnverified: the box's process could not be verified right now (a
	// transient error such as EMFILE while reading /proc); nothing was
	// signalled. The box is in state unknown and is verified again shortly.
	ErrUnverified ErrorCode = "unverified"
	// ErrPersist: the change happened (a stop stopped the box) but could not
	// be written to state.json; the supervisor keeps retrying the write.
	ErrPersist ErrorCode = "persist"
	// ErrUnsafeHome: a directory or file of the home (or the control
	// socket's server) is controlled by someone other than this user or
	// root, so boxsup refuses to use it rather than act on planted input.
	ErrUnsafeHome ErrorCode = "unsafe_home"
	// ErrUnsupported: the spec sets a field that the box's engine does not
	// honour (or honours only through a cgroup controller the supervisor
	// cannot apply here). The box is refused before anything is created;
	// the message names the engine and the fields. It is also ErrBadSpec.
	ErrUnsupported ErrorCode = "unsupported"
	// ErrUnavailable: what the request needs is out of reach right now: the
	// cluster's etcd (a start that needs an ownership record), a member's
	// lease (a member that may have been cut off takes no new box), or the
	// member that holds the box. Nothing was done; retry later.
	ErrUnavailable ErrorCode = "unavailable"
)

// descriptions are the texts of the codes: the first part of every message.
var descriptions = map[ErrorCode]string{
	ErrInvalidID:        "invalid box id",
	ErrNotFound:         "box not found",
	ErrAlreadyExists:    "box already exists",
	ErrShimNotFound:     "box runner binary not found",
	ErrReadyTimeout:     "box did not become ready in time",
	ErrIdentityMismatch: "process identity does not match the record",
	ErrHomeLocked:       "home is locked by another supervisor",
	ErrBadSpec:          "invalid box spec",
	ErrUnsupported:      "not supported by the engine",
	ErrStartFailed:      "box failed to start",
	ErrCorruptFile:      "corrupt or truncated file",
	ErrNotSocket:        "path exists and is not a socket",
	ErrBusy:             "box is busy",
	ErrNotRunning:       "box is not running",
	ErrShuttingDown:     "supervisor is shutting down",
	ErrCgroup:           "cgroup setup failed",
	ErrTimeout:          "operation timed out",
	ErrInternal:         "internal error",
	ErrUnverified:       "box process could not be verified",
	ErrPersist:          "state change not written to disk",
	ErrUnsafeHome:       "unsafe home",
	ErrUnavailable:      "unavailable",
}

// implied lists, for the codes that have them, the other errors an error of
// that code also is: a supervisor timeout is a deadline exceeded, and a
// field the engine does not honour is a bad spec (so a caller that knows
// only ErrBadSpec still recognises the refusal). Codes are compared, not
// values, so the relation survives an error's trip through JSON.
var implied = map[ErrorCode][]error{
	ErrTimeout:     {context.DeadlineExceeded},
	ErrUnsupported: {ErrBadSpec},
}

// implies reports whether an error of code c is also target: a code or
// error that implied lists for c, or an *Error of such a code.
func (c ErrorCode) implies(target error) bool {
	if t, ok := target.(*Error); ok && t != nil {
		target = t.Code
	}
	for _, imp := range implied[c] {
		if target == imp {
			return true
		}
	}
	return false
}

// Is reports whether target is an error that the code implies
// (errors.Is(ErrUnsupported, ErrBadSpec) holds). Equal codes compare equal
// without it.
func (c ErrorCode) Is(target error) bool { return c.implies(target) }

// Error returns the code's description ("box not found"); a code this
// version does not know describes itself.
func (c ErrorCode) Error() string {
	if d, ok := descriptions[c]; ok {
		return d
	}
	return strings.ReplaceAll(string(c), "_", " ")
}

// Error is boxsup's typed error. Code classifies it; Msg is the human text.
// An *Error matches, under errors.Is, its code (and the codes and errors the
// code implies); its cause, when it has one, is reachable with errors.Unwrap,
// so errors.Is(err, fs.ErrPermission) holds for a permission error that
// crossed an actor boundary. The cause does not survive JSON: a remote peer
// sees code and text only.
type Error struct {
	Code  ErrorCode `json:"code"`
	Msg   string    `json:"message"`
	cause error
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause, or nil.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is this error's code (an ErrorCode, or an
// *Error with the same code), or an error the code implies.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case ErrorCode:
		if t == e.Code {
			return true
		}
	case *Error:
		if t != nil && t.Code == e.Code {
			return true
		}
	}
	return e.Code.implies(target)
}

// Errorf returns a new *Error with the code and a message of the form
// "<code description>: <detail>". An error among the arguments formatted
// with %w becomes the cause. Example:
//
//	messages.Errorf(messages.ErrShimNotFound, "%s", path)
//	// box runner binary not found: /usr/bin/boxsup-shim
func Errorf(code ErrorCode, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Msg: code.Error() + ": " + err.Error(), cause: errors.Unwrap(err)}
}

// Wrap returns an *Error with the code whose text is cause's and whose cause
// is cause: errors.Is matches both. Use it where the cause already says
// everything (a nil cause gives nil).
func Wrap(code ErrorCode, cause error) *Error {
	if cause == nil {
		return nil
	}
	return &Error{Code: code, Msg: code.Error() + ": " + cause.Error(), cause: cause}
}

// AsError converts any error into an *Error for a reply message, keeping the
// original as its cause: an *Error anywhere in the chain gives its code
// (with the full outer text), a context error gives ErrTimeout (deadline) or
// ErrShuttingDown (cancelled), anything else ErrInternal. A nil error gives
// nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		if e == err {
			return e
		}
		return &Error{Code: e.Code, Msg: err.Error(), cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: ErrTimeout, Msg: err.Error(), cause: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: ErrShuttingDown, Msg: err.Error(), cause: err}
	}
	return &Error{Code: ErrInternal, Msg: err.Error(), cause: err}
}

// Err turns a reply's *Error field into an error value, keeping nil as nil
// (a nil *Error stored in an error interface would not compare equal to nil).
func Err(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}
