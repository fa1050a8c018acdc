//go:build !windows

package fileacl

import "os"

// Restrict does nothing outside Windows: the file's permission bits, which the
// caller sets, already keep it private.
func Restrict(f *os.File) error { return nil }
