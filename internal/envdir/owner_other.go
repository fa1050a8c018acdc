//go:build !unix && !windows

package envdir

import "io/fs"

// checkOwner has no notion of a file owner to check on this platform.
func checkOwner(p string, fi fs.FileInfo) error { return nil }

// fileOwner has no numeric owner to report on this platform.
func fileOwner(fs.FileInfo) (int, bool) { return -1, false }

// sudoUser: there is no sudo on this platform.
func sudoUser() (uid, gid int, ok bool) { return -1, -1, false }
