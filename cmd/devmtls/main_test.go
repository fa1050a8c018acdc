package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the devmtls executable built once for tests that need real
// processes (concurrency, signals, exit codes, benchmarks).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devmtls-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "devmtls")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test -X main.commit=abc123", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building devmtls for the tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the real command in-process and returns stdout, stderr and the exit
// code main would use.
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := report(err, &errb)
	return out.String(), errb.String(), code
}

// mustCLI is cli that fails the test on a non-zero exit.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("devmtls %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}
