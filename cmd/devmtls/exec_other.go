//go:build !unix

package main

import "os"

// On Windows the console delivers Ctrl-C to every process attached to it, the
// child included, and other signals cannot be sent to a process.
func forwardedSignals() []os.Signal { return []os.Signal{os.Interrupt} }

func deliveredByTerminal(os.Signal) bool { return true }

func exitCode(ps *os.ProcessState) int { return ps.ExitCode() }
