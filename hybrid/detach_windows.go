package hybrid

import (
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// detach starts the background process without a console (DETACHED_PROCESS)
// and in a process group of its own, so it outlives the terminal and the
// Ctrl-C that ends `devmtls up` in the foreground.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.DETACHED_PROCESS}
}

// terminate ends the process: Windows cannot ask another process to stop
// except through a console it shares, and the background process has none.
func terminate(p *os.Process) { p.Kill() }
