// Package composetest holds the end-to-end tests that need the Docker Engine
// (and both Compose lines, testenv.ForEachCompose), a real PostgreSQL or
// HAProxy, or the host itself (root, mount namespaces, hostile clones): they
// drive the real devmtls binary, built once in TestMain, as a user would.
// The cluster end-to-end tests are test/e2e's; the two packages run in
// parallel under go test ./...
package composetest

import (
	"fmt"
	"os"
	"testing"

	"github.com/devmtls/devmtls/internal/testbin"
)

// devmtlsBin is the real binary, built once for the run.
var devmtlsBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := testbin.Build("devmtls-compose-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devmtlsBin = bin
	code := m.Run()
	e2e.cleanup()
	cleanup()
	os.Exit(code)
}

// runBin runs the built binary with env added to the test's environment.
func runBin(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return testbin.Run(t, devmtlsBin, "", env, "", args...)
}
