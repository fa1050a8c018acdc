//go:build darwin

package hybrid

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/devmtls/devmtls/internal/envdir"
	"golang.org/x/sys/unix"
)

// processStart is the process's start time (seconds.microseconds since the
// epoch) from the kernel's process table.
func processStart(pid int) (string, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return "", err
	}
	t := kp.Proc.P_starttime
	return strconv.FormatInt(int64(t.Sec), 10) + "." + fmt.Sprintf("%06d", t.Usec), nil
}

// proveForwards checks, on the running system, that st.PID is the forwards
// process devmtls started: the environment's forwards lock is held (read
// checked that), the process started at the recorded microsecond — which a
// state file from a cloned repository cannot know — and it runs this devmtls
// executable. macOS has no per-process view of flock holders, so the start
// time is what ties the PID to the process that wrote the state.
func proveForwards(d *envdir.Dir, st *State) (process, error) {
	fail := func(format string, args ...any) error {
		return &ProofError{PID: st.PID, State: d.Path(rel(stateFile)), EnvDir: d.Path("."), Finding: fmt.Sprintf(format, args...)}
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", st.PID)
	if err != nil || kp.Proc.P_pid != int32(st.PID) {
		return nil, fail("no such process runs")
	}
	start, _ := processStart(st.PID)
	if st.Start == "" || start != st.Start {
		return nil, fail("it started at %s, not at the recorded %q, so it is another process", start, st.Start)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fail("devmtls cannot find its own executable (%v)", err)
	}
	comm := unix.ByteSliceToString(kp.Proc.P_comm[:])
	// p_comm holds the executable's name, cut to 16 bytes.
	if comm == "" || !strings.HasPrefix(filepath.Base(exe), comm) {
		return nil, fail("it runs %q, not devmtls", comm)
	}
	return killProcess(st.PID), nil
}

type killProcess int

func (p killProcess) terminate() error { return unix.Kill(int(p), unix.SIGTERM) }
func (p killProcess) kill()            { _ = unix.Kill(int(p), unix.SIGKILL) }
func (p killProcess) release()         {}

// exited: the PID is gone (launchd reaps the detached process at once).
func (p killProcess) exited() bool { return errors.Is(unix.Kill(int(p), 0), unix.ESRCH) }
