//go:build !windows

package envdir

// modeBitsControlAccess is true where permission bits decide who may read a
// file, so devmtls sets them (0600 keys, 0700 directories).
const modeBitsControlAccess = true
