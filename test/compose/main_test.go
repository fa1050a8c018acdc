// Package composetest holds the end-to-end tests that need the Docker Engine
// (and both Compose lines, testenv.ForEachCompose), a real PostgreSQL or
// HAProxy, or the host itself (root, mount namespaces, hostile clones): they
// drive the real devmtls binary, built once in TestMain, as a user would.
// The cluster end-to-end tests are test/e2e's; the two packages run in
// parallel under go test ./...
package composetest

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

// devmtlsBin is the real binary, built once for the run.
var devmtlsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devmtls-compose-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devmtlsBin = filepath.Join(dir, "devmtls")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test -X main.commit=abc123", "-o", devmtlsBin, "../../cmd/devmtls")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build devmtls: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	e2e.cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBin runs the built binary with env added to the test's environment.
func runBin(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(devmtlsBin, args...)
	cmd.Env = append(os.Environ(), env...)
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
