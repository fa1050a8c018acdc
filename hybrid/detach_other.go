//go:build !unix

package hybrid

import (
	"os"
	"os/exec"
)

func detach(cmd *exec.Cmd) {}

func terminate(p *os.Process) { p.Kill() }
