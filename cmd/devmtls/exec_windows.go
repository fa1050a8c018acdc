package main

import (
	"os"
	"syscall"
)

// forwardedSignals are what Windows delivers to a console program: Ctrl-C
// and Ctrl-Break arrive as os.Interrupt, closing the console window, logoff
// and shutdown as SIGTERM. Subscribing keeps devmtls alive through them, so
// it can wait for the child and return its exit code.
func forwardedSignals() []os.Signal { return []os.Signal{os.Interrupt, syscall.SIGTERM} }

// deliveredByTerminal is always true on Windows: the console sends each of
// those events to every process of the process group attached to it, and the
// child inherits devmtls's console and group, so it has its own copy already
// (as with `go run`). Windows has no way to send a process any other signal.
func deliveredByTerminal(os.Signal) bool { return true }

// exitCode is the child's exit status as Windows reports it; a program that
// Ctrl-C ended exits with STATUS_CONTROL_C_EXIT (0xC000013A), passed on as is.
func exitCode(ps *os.ProcessState) int { return ps.ExitCode() }
