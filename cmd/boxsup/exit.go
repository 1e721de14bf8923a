package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/boxsup/boxsup/messages"
)

// Exit codes of boxsup itself. A foreground run exits with its box's code
// instead (0-255; 128+N when the box died of signal N).
const (
	exitOK    = 0
	exitError = 1 // any failed command: unknown or invalid ID, bad value, refused request
	exitUsage = 2 // unknown flag or command, wrong number of arguments

	exitInterrupted = 130 // a command other than run was interrupted by SIGINT or SIGTERM
)

// exitCodeError ends the process with code. Its message, when err is not
// nil, goes to standard error.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	var me *messages.Error
	if e.code == exitUsage && errors.As(e.err, &me) && me.Code == messages.ErrBadSpec {
		// A mistake on the command line is not a box spec: say what is
		// wrong with the flag, without "invalid box spec: " before it.
		return strings.TrimPrefix(e.err.Error(), messages.ErrBadSpec.Error()+": ")
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

// exitWith returns an error that makes boxsup exit with code, printing
// nothing more.
func exitWith(code int) error { return &exitCodeError{code: code} }

// usageError marks a command-line mistake (exit 2).
func usageError(err error) error { return &exitCodeError{code: exitUsage, err: err} }

// reportError prints err (if it has a message) and returns the exit code.
func reportError(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitError
	var ece *exitCodeError
	if errors.As(err, &ece) {
		code = ece.code
		if ece.err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "boxsup: %v\n", err)
	return code
}
