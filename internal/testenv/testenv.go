// Package testenv decides what an end-to-end test does when something it needs
// is missing from the machine: under CI=true the test fails (a skipped test must
// never count as a pass there); on a laptop it skips, saying what is missing.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where every end-to-end
// dependency must be present.
func InCI() bool {
	return os.Getenv("CI") == "true"
}

// Missing fails the test in CI and skips it elsewhere, naming what is missing
// and how to get it.
func Missing(t testing.TB, what, howToGet string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is missing (CI=true, so this end-to-end test fails instead of skipping): %s", what, howToGet)
	}
	t.Skipf("skipping: %s is missing: %s", what, howToGet)
}

// LookPath returns the path of an executable, looked up in PATH and then in
// the system directories a normal user's PATH omits, or fails/skips the test
// via Missing with the given install hint.
func LookPath(t testing.TB, name, howToGet string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// Debian installs daemons such as haproxy here; a normal user's PATH
	// leaves these out, so a tool installed there is not missing.
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p
		}
	}
	Missing(t, name, howToGet)
	return ""
}
