//go:build !unix

package compose

import "io/fs"

// fileOwner reports no numeric owner: files have none on this platform.
func fileOwner(fi fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
