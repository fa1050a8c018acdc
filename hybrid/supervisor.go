package hybrid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/devmtls/devmtls/internal/envdir"
)

// DaemonCommand is the hidden devmtls subcommand that runs Run.
const DaemonCommand = "forwards-daemon"

// openEnv opens the environment directory for the forwards' files; ok is
// false when there is none.
func openEnv(envDir string) (d *envdir.Dir, ok bool, err error) {
	d, err = envdir.Open(envDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return d, true, nil
}

// Read returns the running process's state, or nil when none runs. A process
// runs exactly when the environment's forwards lock is held.
func Read(envDir string) (*State, error) {
	d, ok, err := openEnv(envDir)
	if !ok {
		return nil, err
	}
	defer d.Close()
	return read(d)
}

func read(d *envdir.Dir) (*State, error) {
	held, err := d.Held(rel(lockFile))
	if err != nil || !held {
		return nil, err
	}
	// Held: the process runs; its state may lag its start by a moment.
	var last error
	for range 50 {
		st, err := readState(d)
		if err == nil {
			return st, nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	if errors.Is(last, fs.ErrNotExist) {
		return nil, fmt.Errorf("the forwards process of %s runs but reports nothing; see %s", d.Path("."), d.Path(rel(LogFile)))
	}
	return nil, last
}

// Ensure makes the environment's background process serve spec: an already
// running one serving the same spec is reused (started is false), one serving
// another spec is replaced. exe is the devmtls binary to start.
func Ensure(ctx context.Context, envDir string, spec Spec, exe string) (st *State, started bool, err error) {
	d, err := envdir.Create(envDir)
	if err != nil {
		return nil, false, err
	}
	defer d.Close()
	if err := d.MkdirAll(Dir, 0o700, -1, -1); err != nil {
		return nil, false, err
	}
	hash := spec.Hash()
	cur, err := read(d)
	if err != nil {
		return nil, false, err
	}
	if cur != nil && cur.SpecHash == hash {
		return cur, false, nil
	}
	if cur != nil {
		if _, err := stop(ctx, d, cur); err != nil {
			return nil, false, err
		}
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := d.WriteFile(rel(specFile), append(data, '\n'), 0o600, -1, -1); err != nil {
		return nil, false, err
	}
	if err := d.Remove(rel(stateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	logFile, err := openLog(d)
	if err != nil {
		return nil, false, err
	}
	defer logFile.Close()
	logStart, _ := logFile.Seek(0, io.SeekEnd)
	cmd := exec.Command(exe, "--dir", d.Path("."), DaemonCommand)
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
			return nil, false, fmt.Errorf("the forwards process stopped: %s", lastLines(d, logStart))
		case <-deadline:
			cmd.Process.Kill()
			return nil, false, fmt.Errorf("the forwards process did not start listening within 30s; see %s", d.Path(rel(LogFile)))
		case <-ctx.Done():
			cmd.Process.Kill()
			return nil, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		st, err := readState(d)
		if err == nil && st.PID == cmd.Process.Pid && st.SpecHash == hash {
			return st, true, nil
		}
	}
}

// openLog opens the log for appending; it must be a plain file of the
// environment (a link is refused like everywhere else).
func openLog(d *envdir.Dir) (*os.File, error) {
	f, err := d.OpenFile(rel(LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, &envdir.RefusedError{Path: d.Path(rel(LogFile)), Problem: "is not a plain file", Fix: "remove it and run devmtls up again"}
	}
	return f, nil
}

// Stop ends the running process (SIGTERM, then SIGKILL after 10s) and reports
// whether one ran. It signals only a process it proves to be the forwards
// process devmtls started for this environment (see proveForwards); otherwise
// it returns a *ProofError saying what it found, and signals nothing.
func Stop(ctx context.Context, envDir string) (bool, error) {
	d, ok, err := openEnv(envDir)
	if !ok {
		return false, err
	}
	defer d.Close()
	st, err := read(d)
	if err != nil || st == nil {
		return false, err
	}
	return stop(ctx, d, st)
}

// Leftover says what devmtls found when no forwards process runs for the
// environment (no process holds its forwards lock) but a state file names
// one: that the process it names was not signalled, as one sentence for down
// to print. It returns "" when the lock is held or there is no state file.
func Leftover(envDir string) (string, error) {
	d, ok, err := openEnv(envDir)
	if !ok {
		return "", err
	}
	defer d.Close()
	if held, err := d.Held(rel(lockFile)); err != nil || held {
		return "", err
	}
	data, err := d.ReadFile(rel(stateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err // a link or an unreadable file: refused as everywhere else
	}
	st, err := parseState(d.Path(rel(stateFile)), data)
	if err != nil {
		// Nothing runs, so a damaged leftover is a warning for down, as a
		// damaged placement is, not a failure after compose down succeeded.
		return fmt.Sprintf("no forwards process runs for %s, so nothing was signalled; %v", d.Path("."), err), nil
	}
	return fmt.Sprintf("no forwards process runs for %s (no process holds %s), so process %d, which %s names, was left alone; that file is left over from an earlier run or came with the repository, and the next devmtls up replaces it",
		d.Path("."), d.Path(rel(lockFile)), st.PID, d.Path(rel(stateFile))), nil
}

func stop(ctx context.Context, d *envdir.Dir, st *State) (bool, error) {
	p, err := proveForwards(d, st)
	if err != nil {
		return false, err
	}
	defer p.release()
	if err := p.terminate(); err != nil {
		return false, fmt.Errorf("stop the forwards process %d: %w", st.PID, err)
	}
	for i, wait := range []time.Duration{10 * time.Second, 5 * time.Second} {
		if i > 0 {
			p.kill()
		}
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			if held, err := d.Held(rel(lockFile)); err == nil && !held {
				waitExit(ctx, p)
				if err := d.Remove(rel(stateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return true, err
				}
				return true, nil
			}
			select {
			case <-ctx.Done():
				return true, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return true, fmt.Errorf("the forwards process %d of %s did not stop", st.PID, d.Path("."))
}

// waitExit waits, briefly, for the process to end: it lets go of the lock in
// its last moments, and down promises that no process is left when it returns.
func waitExit(ctx context.Context, p process) {
	deadline := time.Now().Add(5 * time.Second)
	for !p.exited() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// lastLines returns the last line of the log written since offset, for an
// error message.
func lastLines(d *envdir.Dir, offset int64) string {
	file := d.Path(rel(LogFile))
	data, err := d.ReadFile(rel(LogFile))
	if err != nil || int64(len(data)) < offset {
		return "see " + file
	}
	lines := strings.Split(strings.TrimSpace(string(bytes.TrimSpace(data[offset:]))), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return "see " + file
	}
	return strings.TrimPrefix(lines[len(lines)-1], "devmtls: ")
}
