//go:build !windows

package atomicfile

// DirSyncSupported reports whether a directory can be opened and fsynced to
// make the creations and renames in it durable.
const DirSyncSupported = true
