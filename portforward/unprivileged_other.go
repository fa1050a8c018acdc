//go:build !linux

package portforward

// firstUnprivilegedPort is where the BSDs and macOS start letting anyone
// bind (macOS since Mojave lets anyone bind any port, and never answers EACCES).
func firstUnprivilegedPort() int { return 1024 }
