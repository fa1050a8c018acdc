//go:build !unix

package hybrid

import "os/exec"

func detach(cmd *exec.Cmd) {}
