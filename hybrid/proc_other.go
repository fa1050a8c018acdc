//go:build !linux && !darwin && !windows

package hybrid

import (
	"errors"
	"runtime"

	"github.com/devmtls/devmtls/internal/envdir"
)

// processStart is unknown on this platform.
func processStart(pid int) (string, error) {
	return "", errors.New("process start times are not read on " + runtime.GOOS)
}

// proveForwards cannot prove anything on this platform, so devmtls never
// signals the process; the user stops it.
func proveForwards(d *envdir.Dir, st *State) (process, error) {
	return nil, &ProofError{PID: st.PID, State: d.Path(rel(stateFile)), EnvDir: d.Path("."),
		Finding: "devmtls cannot prove on " + runtime.GOOS + " that it is the process it started"}
}
