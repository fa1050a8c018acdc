//go:build unix

package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func forwardedSignals() []os.Signal {
	return []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}
}

// deliveredByTerminal reports whether the kernel has already sent s to the
// child: Ctrl-C and Ctrl-\ go to the terminal's whole foreground process
// group, which the child shares with devmtls. Passing those on would deliver
// them twice (many programs treat a second SIGINT as "stop cleaning up and
// quit now"); sudo skips the same signals for the same reason. Signals sent
// with kill(1) to devmtls alone, or arriving while devmtls is not in the
// foreground (CI, an IDE, a pipeline in the background), are passed on.
func deliveredByTerminal(s os.Signal) bool {
	if s != syscall.SIGINT && s != syscall.SIGQUIT {
		return false
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false // no controlling terminal
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}

// exitCode is the child's exit status, or 128+N when signal N killed it, as
// shells report it.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
