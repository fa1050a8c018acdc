//go:build unix

package main

import "github.com/devmtls/devmtls/hostenv"

// defaultEnvFormat is sh: `eval "$(devmtls env)"` runs it in a subshell, so
// the parent process does not tell which shell the user types in.
func defaultEnvFormat() hostenv.Format { return hostenv.FormatSh }
