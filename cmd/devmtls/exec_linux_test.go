//go:build linux

package main

// Signal handling of devmtls exec on Linux, where real signals and a real
// pseudo-terminal (pty_test.go) can be used; exec_windows.go's console
// events cannot be produced here.

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/devmtls/devmtls/internal/testenv"
)

// signalChild is a child that reports every signal devmtls passes on and
// exits 3 on SIGTERM, saying how many SIGINTs it received.
const signalChild = `
import signal, sys
n = 0
def on_int(s, f):
    global n
    n += 1
    print("INT", n, flush=True)
def on_other(s, f):
    print(signal.Signals(s).name, flush=True)
def on_term(s, f):
    print("TERM after", n, "INT", flush=True)
    sys.exit(3)
signal.signal(signal.SIGINT, on_int)
signal.signal(signal.SIGHUP, on_other)
signal.signal(signal.SIGQUIT, on_other)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    signal.pause()
`

// startSignalChild starts `devmtls exec -- python3 -c signalChild` and returns
// a reader of the child's lines.
func startSignalChild(t *testing.T, attr *syscall.SysProcAttr, stdin *os.File) (*exec.Cmd, func() string) {
	t.Helper()
	testenv.LookPath(t, "python3", "apt-get install python3")
	cmd := exec.Command(devmtlsBin, "--dir", filepath.Join(t.TempDir(), ".devmtls"), "exec", "--", "python3", "-c", signalChild)
	cmd.SysProcAttr = attr
	cmd.Stdin = stdin
	cmd.Stderr = os.Stderr
	next := startLines(t, cmd)
	if l := next(); l != "ready" {
		t.Fatalf("child said %q, want ready", l)
	}
	return cmd, next
}

// TestExecForwardsSignals sends each signal to devmtls alone (no terminal, as
// under CI or an IDE) and checks the child receives it once; SIGTERM ends the
// child, whose exit code devmtls returns.
func TestExecForwardsSignals(t *testing.T) {
	cmd, next := startSignalChild(t, &syscall.SysProcAttr{Setsid: true}, nil)
	for sig, want := range map[syscall.Signal]string{syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT", syscall.SIGINT: "INT 1"} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if l := next(); l != want {
			t.Errorf("after %v the child said %q, want %q", sig, l, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if l := next(); l != "TERM after 1 INT" {
		t.Errorf("child said %q", l)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("devmtls exit %d (%v), want the child's 3", code, err)
	}
}

// TestExecCtrlCInTerminal types Ctrl-C into a real pseudo-terminal whose
// foreground process group holds devmtls and the child: the child gets the
// SIGINT, devmtls keeps running and still passes SIGTERM on.
// TestDeliveredByTerminal checks that devmtls does not send a second SIGINT
// there (two SIGINTs this close merge in the kernel, so the child cannot count
// them reliably).
func TestExecCtrlCInTerminal(t *testing.T) {
	ptmx, pts := openPTY(t)
	go func() { _, _ = io.Copy(io.Discard, ptmx) }()
	cmd, next := startSignalChild(t, &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}, pts)
	pts.Close()
	if _, err := ptmx.Write([]byte{0x03}); err != nil { // VINTR
		t.Fatal(err)
	}
	if l := next(); l != "INT 1" {
		t.Fatalf("after Ctrl-C the child said %q", l)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if l := next(); !strings.HasPrefix(l, "TERM after") {
		t.Errorf("child said %q", l)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("devmtls exit %d, want 3", code)
	}
}

// TestDeliveredByTerminal runs the decision in the situations it tells apart:
// in the foreground of a real pseudo-terminal, Ctrl-C and Ctrl-\ signals have
// reached the whole process group already; without a terminal nothing has.
func TestDeliveredByTerminal(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := func(attr *syscall.SysProcAttr, stdin *os.File) string {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), helperEnv+"=terminal-signals")
		cmd.SysProcAttr, cmd.Stdin = attr, stdin
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	_, pts := openPTY(t)
	if got, want := helper(&syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}, pts), "INT=true QUIT=true TERM=false HUP=false"; got != want {
		t.Errorf("in a terminal's foreground: %s, want %s", got, want)
	}
	if got, want := helper(&syscall.SysProcAttr{Setsid: true}, nil), "INT=false QUIT=false TERM=false HUP=false"; got != want {
		t.Errorf("without a terminal: %s, want %s", got, want)
	}
}
