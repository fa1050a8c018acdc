// Package testbin builds the real devmtls binary once per test package and
// runs it as a separate process, for the tests that need one: the
// end-to-end tests under test/ and cmd/devmtls's tests of signals, exit
// codes and shells.
package testbin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Version and Commit are stamped into the binary, so tests can recognise it.
const (
	Version = "v9.9.9-test"
	Commit  = "abc123"
)

// Build builds cmd/devmtls into a new temporary directory (named after
// prefix) and returns its path and a function removing the directory. Build
// output goes to stderr. For TestMain, which has no *testing.T.
func Build(prefix string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "devmtls")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+Version+" -X main.commit="+Commit, "-o", bin, "github.com/devmtls/devmtls/cmd/devmtls")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build devmtls: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Run runs bin with args in dir ("" for the test's own) with env added to
// the test's environment and stdin as its input, and returns its output and
// exit code. Failing to start it fails the test.
func Run(t testing.TB, bin, dir string, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run devmtls %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}
