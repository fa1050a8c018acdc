package atomicfile

// DirSyncSupported is false on Windows, which cannot open a directory for
// syncing; NTFS journals the rename itself.
const DirSyncSupported = false
