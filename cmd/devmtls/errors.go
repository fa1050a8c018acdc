package main

import (
	"errors"
	"fmt"
)

// Exit codes. Compose's own exit code passes through unchanged.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// codedError carries the exit code an error should end the process with.
type codedError struct {
	code int
	err  error // nil: exit quietly (the child already reported, e.g. compose)
}

func (e *codedError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *codedError) Unwrap() error { return e.err }

// usageErrorf reports a mistake in how the command was called (exit code 2).
func usageErrorf(format string, args ...any) error {
	return &codedError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// passExitCode ends devmtls with a child's exit code, printing nothing: the
// child has already said what went wrong.
func passExitCode(code int) error {
	return &codedError{code: code}
}

// isUsageError reports whether err is already a usage error.
func isUsageError(err error) bool {
	var ce *codedError
	return errors.As(err, &ce) && ce.code == exitUsage
}

// exitCodeOf returns the exit code for err and the message to print ("" for none).
func exitCodeOf(err error) (int, string) {
	var ce *codedError
	if errors.As(err, &ce) {
		if ce.err == nil {
			return ce.code, ""
		}
		return ce.code, err.Error()
	}
	return exitError, err.Error()
}
