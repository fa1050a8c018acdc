package main

import (
	"errors"
	"fmt"
	"strings"
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

// classify turns the errors cobra produces for bad arguments into usage errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return err
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "requires at most"} {
		if strings.HasPrefix(msg, p) {
			return &codedError{code: exitUsage, err: err}
		}
	}
	return err
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
