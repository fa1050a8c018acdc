package certs

import "fmt"

// FileError reports a problem with one file of the environment in a single
// sentence that names the file and says how to fix it.
type FileError struct {
	Path    string // the file at fault
	Problem string // what is wrong with it
	Fix     string // what the user should do
	Err     error  // the underlying error, if any
}

func (e *FileError) Error() string {
	msg := e.Path + " " + e.Problem
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

const fixRotate = "run `devmtls certs rotate` to replace the environment's credentials"

func damaged(path string, err error) *FileError {
	return &FileError{Path: path, Problem: fmt.Sprintf("is damaged (%v)", err), Fix: fixRotate, Err: err}
}
