package main

// These run on Windows only; nothing here can produce console events on
// Linux. The Linux CI type-checks them (make vet-platforms).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/devmtls/devmtls/hostenv"
	"golang.org/x/sys/windows"
)

// TestExecCtrlBreakReachesChild sends Ctrl-Break to the process group of
// devmtls exec, as a console does: the child gets it, devmtls stays until the
// child exits and returns its exit code.
func TestExecCtrlBreakReachesChild(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(devmtlsBin, "--dir", filepath.Join(t.TempDir(), ".devmtls"), "exec", "--", self)
	cmd.Env = append(os.Environ(), helperEnv+"=console-events")
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP}
	next := startLines(t, cmd)
	if l := next(); l != "ready" {
		t.Fatalf("child said %q, want ready", l)
	}
	if err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	if l := next(); l != "INT" {
		t.Errorf("after Ctrl-Break the child said %q, want INT", l)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("devmtls exit %d, want the child's 3", code)
	}
}

// TestExecExitCodeOnWindows: the child's exit code is devmtls's.
func TestExecExitCodeOnWindows(t *testing.T) {
	_, _, code := runBin(t, nil, "--dir", filepath.Join(t.TempDir(), ".devmtls"), "exec", "--", "cmd", "/c", "exit 7")
	if code != 7 {
		t.Errorf("exit %d, want 7", code)
	}
}

// TestEnvDefaultFormatFollowsTheShell: run from cmd.exe, devmtls env prints
// cmd's SET lines; run from PowerShell, $Env: assignments.
func TestEnvDefaultFormatFollowsTheShell(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devmtls")
	for _, c := range []struct {
		shell []string
		want  hostenv.Format
	}{
		{[]string{"cmd", "/c", devmtlsBin + " --dir " + dir + " env"}, hostenv.FormatCmd},
		{[]string{"powershell", "-NoProfile", "-Command", "& '" + devmtlsBin + "' --dir '" + dir + "' env"}, hostenv.FormatPowerShell},
	} {
		out, err := exec.Command(c.shell[0], c.shell[1:]...).Output()
		if err != nil {
			t.Fatalf("%v: %v", c.shell, err)
		}
		var want strings.Builder
		if err := hostenv.Render(&want, c.want, nil); err != nil {
			t.Fatal(err)
		}
		header, _, _ := strings.Cut(want.String(), "\n")
		if !strings.HasPrefix(string(out), strings.TrimSpace(header)) {
			t.Errorf("from %s, devmtls env printed\n%s\nwant the %s format", c.shell[0], out, c.want)
		}
	}
}
