//go:build windows

package hybrid

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/devmtls/devmtls/internal/envdir"
	"golang.org/x/sys/windows"
)

// processStart is the process's creation time, in 100-nanosecond intervals
// since 1601 (a Windows FILETIME).
func processStart(pid int) (string, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return "", err
	}
	defer windows.CloseHandle(h)
	return creationTime(h)
}

func creationTime(h windows.Handle) (string, error) {
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return "", err
	}
	return strconv.FormatUint(uint64(created.HighDateTime)<<32|uint64(created.LowDateTime), 10), nil
}

// proveForwards checks, on the running system, that st.PID is the forwards
// process devmtls started: the environment's forwards lock is held (read
// checked that), the process was created at the recorded time — which a state
// file from a cloned repository cannot know — and it runs a devmtls
// executable. The process handle opened for the checks is the one terminated,
// so no other process given the same PID can be hit.
func proveForwards(d *envdir.Dir, st *State) (process, error) {
	fail := func(format string, args ...any) error {
		return &ProofError{PID: st.PID, State: d.Path(rel(stateFile)), EnvDir: d.Path("."), Finding: fmt.Sprintf(format, args...)}
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.PROCESS_TERMINATE, false, uint32(st.PID))
	if err != nil {
		return nil, fail("it cannot be opened (%v)", err)
	}
	start, err := creationTime(h)
	if err != nil || st.Start == "" || start != st.Start {
		windows.CloseHandle(h)
		return nil, fail("it was created at %s, not at the recorded %q, so it is another process", start, st.Start)
	}
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n); err != nil {
		windows.CloseHandle(h)
		return nil, fail("its executable cannot be read (%v)", err)
	}
	if exe := filepath.Base(windows.UTF16ToString(buf[:n])); !strings.HasPrefix(strings.ToLower(exe), "devmtls") {
		windows.CloseHandle(h)
		return nil, fail("it runs %s, not devmtls", exe)
	}
	return windowsProcess(h), nil
}

type windowsProcess windows.Handle

// terminate ends the process: Windows has no SIGTERM to ask with.
func (p windowsProcess) terminate() error { return windows.TerminateProcess(windows.Handle(p), 1) }
func (p windowsProcess) kill()            { _ = windows.TerminateProcess(windows.Handle(p), 1) }
func (p windowsProcess) release()         { windows.CloseHandle(windows.Handle(p)) }

// stillActive is the exit code GetExitCodeProcess reports for a process that
// has not ended.
const stillActive = 259

func (p windowsProcess) exited() bool {
	var code uint32
	err := windows.GetExitCodeProcess(windows.Handle(p), &code)
	return err != nil || code != stillActive
}
