package messages

import (
	"errors"
	"fmt"
)

// ErrorCode names a class of failure. It is stable across versions and is what
// errors.Is compares, so an error that crossed a process boundary as JSON still
// matches its sentinel.
type ErrorCode string

// The error codes boxsup returns.
const (
	CodeInvalidID        ErrorCode = "invalid_id"
	CodeNotFound         ErrorCode = "not_found"
	CodeAlreadyExists    ErrorCode = "already_exists"
	CodeShimNotFound     ErrorCode = "shim_not_found"
	CodeReadyTimeout     ErrorCode = "ready_timeout"
	CodeIdentityMismatch ErrorCode = "identity_mismatch"
	CodeHomeLocked       ErrorCode = "home_locked"
	CodeBadSpec          ErrorCode = "bad_spec"
	CodeStartFailed      ErrorCode = "start_failed"
	CodeCorruptFile      ErrorCode = "corrupt_file"
	CodeNotSocket        ErrorCode = "not_socket"
	CodeBusy             ErrorCode = "busy"
	CodeNotRunning       ErrorCode = "not_running"
	CodeShuttingDown     ErrorCode = "shutting_down"
	CodeCgroup           ErrorCode = "cgroup"
	CodeTimeout          ErrorCode = "timeout"
	CodeInternal         ErrorCode = "internal"
	// CodeUnsafeHome: a directory or file of the home (or the control
	// socket's server) is controlled by someone other than this user or
	// root, so boxsup refuses to use it rather than act on planted input.
	CodeUnsafeHome ErrorCode = "unsafe_home"
)

// Error is boxsup's typed error. Code classifies it; Msg is the human text.
// Two *Error values match under errors.Is when their codes are equal, so
// errors.Is(err, ErrNotFound) holds for any not-found error, however worded.
type Error struct {
	Code ErrorCode `json:"code"`
	Msg  string    `json:"message"`
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// The sentinels. Compare with errors.Is; never with ==.
var (
	ErrInvalidID        = &Error{CodeInvalidID, "invalid box id"}
	ErrNotFound         = &Error{CodeNotFound, "box not found"}
	ErrAlreadyExists    = &Error{CodeAlreadyExists, "box already exists"}
	ErrShimNotFound     = &Error{CodeShimNotFound, "box runner binary not found"}
	ErrReadyTimeout     = &Error{CodeReadyTimeout, "box did not become ready in time"}
	ErrIdentityMismatch = &Error{CodeIdentityMismatch, "process identity does not match the record"}
	ErrHomeLocked       = &Error{CodeHomeLocked, "home is locked by another supervisor"}
	ErrBadSpec          = &Error{CodeBadSpec, "invalid box spec"}
	ErrStartFailed      = &Error{CodeStartFailed, "box failed to start"}
	ErrCorruptFile      = &Error{CodeCorruptFile, "corrupt or truncated file"}
	ErrNotSocket        = &Error{CodeNotSocket, "path exists and is not a socket"}
	ErrBusy             = &Error{CodeBusy, "box is busy"}
	ErrNotRunning       = &Error{CodeNotRunning, "box is not running"}
	ErrShuttingDown     = &Error{CodeShuttingDown, "supervisor is shutting down"}
	ErrCgroup           = &Error{CodeCgroup, "cgroup setup failed"}
	ErrTimeout          = &Error{CodeTimeout, "operation timed out"}
	ErrInternal         = &Error{CodeInternal, "internal error"}
	ErrUnsafeHome       = &Error{CodeUnsafeHome, "unsafe home"}
)

// Errorf returns a new *Error with the sentinel's code and a message of the
// form "<sentinel text>: <detail>". Example:
//
//	messages.Errorf(messages.ErrShimNotFound, "%s", path)
//	// box runner binary not found: /usr/bin/boxsup-shim
func Errorf(sentinel *Error, format string, args ...any) *Error {
	return &Error{Code: sentinel.Code, Msg: sentinel.Msg + ": " + fmt.Sprintf(format, args...)}
}

// AsError converts any error into an *Error for a reply message: an *Error
// anywhere in the chain keeps its code (with the full outer text), anything
// else becomes CodeInternal. A nil error gives nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{Code: e.Code, Msg: err.Error()}
	}
	return &Error{Code: CodeInternal, Msg: err.Error()}
}

// Err turns a reply's *Error field into an error value, keeping nil as nil
// (a nil *Error stored in an error interface would not compare equal to nil).
func Err(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}
