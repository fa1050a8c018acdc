//go:build unix

package main

import (
	"testing"

	"github.com/devmtls/devmtls/hostenv"
)

// On Linux and macOS `devmtls env` prints sh unless told otherwise: eval runs
// it from a subshell, whose name says nothing about the user's shell.
func TestDefaultEnvFormatIsSh(t *testing.T) {
	if got := defaultEnvFormat(); got != hostenv.FormatSh {
		t.Errorf("default format %s, want sh", got)
	}
}
