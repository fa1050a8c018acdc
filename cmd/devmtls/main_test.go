package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testbin"
)

// devmtlsBin is the real binary, built once for tests that need a separate
// process (concurrency, exec's signal handling and exit codes, shells running
// `eval "$(devmtls env)"`, benchmarks).
var devmtlsBin string

// helperEnv makes the test binary act as a helper process instead of running
// the tests.
const helperEnv = "DEVMTLS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "terminal-signals" {
		// Re-executed by TestDeliveredByTerminal inside a pseudo-terminal.
		fmt.Printf("INT=%v QUIT=%v TERM=%v HUP=%v\n", deliveredByTerminal(syscall.SIGINT), deliveredByTerminal(syscall.SIGQUIT),
			deliveredByTerminal(syscall.SIGTERM), deliveredByTerminal(syscall.SIGHUP))
		os.Exit(0)
	}
	if os.Getenv(helperEnv) == "console-events" {
		// Run by devmtls exec in exec_windows_test.go: reports the first
		// Ctrl-C or Ctrl-Break and exits 3.
		events := make(chan os.Signal, 1)
		signal.Notify(events, os.Interrupt)
		fmt.Println("ready")
		<-events
		fmt.Println("INT")
		os.Exit(3)
	}
	bin, cleanup, err := testbin.Build("devmtls-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devmtlsBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// cli runs the real command in-process and returns stdout, stderr and the exit
// code main would use.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = report(err, &errb)
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

// runBin runs the built binary with env added to the test's environment.
func runBin(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return testbin.Run(t, devmtlsBin, "", env, "", args...)
}

// startLines starts cmd and returns a function that reads its next line of
// stdout ("<eof>" once it closes it), failing the test when none comes within
// a minute. The process is killed when the test ends.
func startLines(t *testing.T, cmd *exec.Cmd) (next func() string) {
	t.Helper()
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	return func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				return "<eof>"
			}
			return l
		case <-time.After(60 * time.Second): // a hang bound, not a measurement
			t.Fatal("no output from the child within 60s")
			return ""
		}
	}
}
