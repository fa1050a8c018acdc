package hybrid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/devmtls/devmtls/internal/atomicfile"
	"github.com/gofrs/flock"
)

// DaemonCommand is the hidden devmtls subcommand that runs Run.
const DaemonCommand = "forwards-daemon"

// Read returns the running process's state, or nil when none runs. A process
// runs exactly when the environment's forwards lock is held.
func Read(envDir string) (*State, error) {
	lock := flock.New(path(envDir, lockFile), flock.SetPermissions(0o600))
	if _, err := os.Stat(path(envDir, lockFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path(envDir, lockFile), err)
	}
	if ok {
		lock.Unlock()
		return nil, nil
	}
	// Held: the process runs; its state may lag its start by a moment.
	for range 50 {
		data, err := os.ReadFile(path(envDir, stateFile))
		if err == nil {
			var st State
			if err := json.Unmarshal(data, &st); err == nil {
				return &st, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("the forwards process of %s runs but reports nothing; see %s", envDir, path(envDir, LogFile))
}

// Ensure makes the environment's background process serve spec: an already
// running one serving the same spec is reused (started is false), one serving
// another spec is replaced. exe is the devmtls binary to start.
func Ensure(ctx context.Context, envDir string, spec Spec, exe string) (st *State, started bool, err error) {
	if err := os.MkdirAll(path(envDir, ""), 0o700); err != nil {
		return nil, false, err
	}
	hash := spec.Hash()
	cur, err := Read(envDir)
	if err != nil {
		return nil, false, err
	}
	if cur != nil && cur.SpecHash == hash {
		return cur, false, nil
	}
	if cur != nil {
		if _, err := Stop(ctx, envDir); err != nil {
			return nil, false, err
		}
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.WriteFile(path(envDir, specFile), append(data, '\n'), 0o600); err != nil {
		return nil, false, err
	}
	os.Remove(path(envDir, stateFile))
	logFile, err := os.OpenFile(path(envDir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, false, err
	}
	defer logFile.Close()
	logStart, _ := logFile.Seek(0, 2)
	cmd := exec.Command(exe, "--dir", envDir, DaemonCommand)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("start the forwards process: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-exited:
			return nil, false, fmt.Errorf("the forwards process stopped: %s", lastLines(path(envDir, LogFile), logStart))
		case <-deadline:
			cmd.Process.Kill()
			return nil, false, fmt.Errorf("the forwards process did not start listening within 30s; see %s", path(envDir, LogFile))
		case <-ctx.Done():
			cmd.Process.Kill()
			return nil, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		data, err := os.ReadFile(path(envDir, stateFile))
		if err != nil {
			continue
		}
		var st State
		if json.Unmarshal(data, &st) == nil && st.PID == cmd.Process.Pid && st.SpecHash == hash {
			return &st, true, nil
		}
	}
}

// Stop ends the running process (SIGTERM, then SIGKILL after 10s) and reports
// whether one ran.
func Stop(ctx context.Context, envDir string) (bool, error) {
	st, err := Read(envDir)
	if err != nil || st == nil {
		return false, err
	}
	p, err := os.FindProcess(st.PID)
	if err != nil {
		return false, err
	}
	terminate(p)
	for _, wait := range []time.Duration{10 * time.Second, 5 * time.Second} {
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			if free(envDir) {
				os.Remove(path(envDir, stateFile))
				return true, nil
			}
			select {
			case <-ctx.Done():
				return true, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		p.Kill()
	}
	return true, fmt.Errorf("the forwards process %d of %s did not stop", st.PID, envDir)
}

// free reports whether no process holds the forwards lock.
func free(envDir string) bool {
	lock := flock.New(path(envDir, lockFile), flock.SetPermissions(0o600))
	ok, err := lock.TryLock()
	if ok {
		lock.Unlock()
	}
	return ok && err == nil
}

// lastLines returns the log written since offset, last lines first trimmed,
// for an error message.
func lastLines(file string, offset int64) string {
	data, err := os.ReadFile(file)
	if err != nil || int64(len(data)) < offset {
		return "see " + file
	}
	lines := strings.Split(strings.TrimSpace(string(bytes.TrimSpace(data[offset:]))), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return "see " + file
	}
	return strings.TrimPrefix(lines[len(lines)-1], "devmtls: ")
}
