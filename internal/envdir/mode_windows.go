package envdir

// modeBitsControlAccess is false on Windows: Go's Chmod only toggles the
// read-only attribute there; who may read a key is set by its ACL (fileacl).
const modeBitsControlAccess = false
