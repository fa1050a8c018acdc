//go:build unix

package hybrid

import (
	"os/exec"
	"syscall"
)

// detach puts the background process in its own session, so it outlives the
// terminal and the Ctrl-C that ends `devmtls up` in the foreground.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
