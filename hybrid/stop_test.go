package hybrid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/envdir"
	"github.com/devmtls/devmtls/internal/testenv"
)

// helperDaemon makes the test binary act as a stand-in forwards process: it
// takes the forwards lock and reports itself in state.json exactly as Run
// does, then waits to be signalled. Ensure starts it too: the variable is
// inherited.
const helperDaemon = "DEVMTLS_HYBRID_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDaemon); dir != "" {
		os.Exit(runHelperDaemon(dir))
	}
	os.Exit(m.Run())
}

func runHelperDaemon(dir string) int {
	d, err := envdir.Open(dir)
	if err != nil {
		return 1
	}
	l, err := d.TryLock(rel(lockFile))
	if err != nil {
		return 1
	}
	defer l.Unlock()
	start, err := processStart(os.Getpid())
	if err != nil {
		return 1
	}
	// Like Run, it reports the hash of the spec it was given, if any.
	hash := "00"
	if spec, err := readSpec(d); err == nil {
		hash = spec.Hash()
	}
	if err := writeState(d, &State{PID: os.Getpid(), Start: start, EnvDir: d.Path("."), SpecHash: hash}); err != nil {
		return 1
	}
	time.Sleep(time.Minute)
	return 0
}

// newEnv returns an environment directory with an empty forwards directory.
func newEnv(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".devmtls")
	if err := os.MkdirAll(filepath.Join(dir, Dir), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startProcess starts cmd and returns it; it is killed when the test ends.
func startProcess(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return cmd
}

func alive(p *os.Process) bool { return p.Signal(syscall.Signal(0)) == nil }

// writeForgedState writes a state.json naming pid, as a cloned repository
// could; with knownStart it even has the process's real start time.
func writeForgedState(t *testing.T, dir string, pid int, knownStart bool) {
	t.Helper()
	st := State{PID: pid, SpecHash: "00", EnvDir: dir, Start: "1"}
	if knownStart {
		var err error
		if st.Start, err = processStart(pid); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, Dir, stateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStopLeavesForeignProcessesAlone(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the lock holder is read from /proc/locks")
	}
	cases := []struct {
		name string
		// setup starts whatever holds the lock and returns the process the
		// state file names.
		setup     func(t *testing.T, dir string) *os.Process
		wantProof string // "" when nothing runs as far as devmtls can tell
	}{
		{"lock free, state names another process", func(t *testing.T, dir string) *os.Process {
			p := startProcess(t, exec.Command("sleep", "60")).Process
			writeForgedState(t, dir, p.Pid, true)
			return p
		}, ""},
		{"lock held by another process, state names a sleep with its real start", func(t *testing.T, dir string) *os.Process {
			d, err := envdir.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			l, err := d.TryLock(rel(lockFile))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Unlock(); d.Close() })
			p := startProcess(t, exec.Command("sleep", "60")).Process
			writeForgedState(t, dir, p.Pid, true)
			return p
		}, "does not hold the forwards lock"},
		{"state names the lock holder, which is not devmtls", func(t *testing.T, dir string) *os.Process {
			flock := testenv.LookPath(t, "flock", "apt-get install util-linux")
			p := startProcess(t, exec.Command(flock, "--exclusive", filepath.Join(dir, Dir, lockFile), "sleep", "60")).Process
			waitHeld(t, dir)
			writeForgedState(t, dir, p.Pid, true)
			return p
		}, "is not devmtls forwards-daemon"},
		{"state names the lock holder with a wrong start time", func(t *testing.T, dir string) *os.Process {
			p := startHelper(t, dir)
			data, _ := os.ReadFile(filepath.Join(dir, Dir, stateFile))
			var st State
			json.Unmarshal(data, &st)
			st.Start += "1"
			data, _ = json.Marshal(st)
			os.WriteFile(filepath.Join(dir, Dir, stateFile), data, 0o600)
			return p
		}, "so it is another process"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := newEnv(t)
			victim := c.setup(t, dir)
			stopped, err := Stop(context.Background(), dir)
			if stopped {
				t.Error("Stop reports it stopped a process")
			}
			switch {
			case c.wantProof == "" && err != nil:
				t.Errorf("Stop: %v", err)
			case c.wantProof != "":
				var pe *ProofError
				if !errors.As(err, &pe) || !errors.Is(err, ErrNotProven) || !strings.Contains(err.Error(), c.wantProof) || strings.Contains(err.Error(), "\n") {
					t.Errorf("Stop: %v; want one sentence saying it %s", err, c.wantProof)
				}
			}
			// With the lock free, down says what it found; with it
			// held, the ProofError above does.
			found, err := Leftover(dir)
			wantFound := fmt.Sprintf("so process %d, which %s names, was left alone", victim.Pid, filepath.Join(dir, Dir, stateFile))
			if err != nil || (c.wantProof == "") != strings.Contains(found, wantFound) || c.wantProof != "" && found != "" {
				t.Errorf("Leftover = %q, %v; want it to say %q exactly when the lock is free", found, err, wantFound)
			}
			time.Sleep(100 * time.Millisecond)
			if !alive(victim) {
				t.Fatal("the process named in the state file was killed")
			}
		})
	}
}

// TestLeftoverWarnsAboutADamagedStateFile: with no forwards process running,
// a damaged state file is reported for down to print, not returned as an
// error that would fail down after compose down succeeded.
func TestLeftoverWarnsAboutADamagedStateFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, Dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Dir, stateFile), []byte(`{"pid": "not a number"`), 0o600); err != nil {
		t.Fatal(err)
	}
	found, err := Leftover(dir)
	if err != nil || !strings.Contains(found, "nothing was signalled") || !strings.Contains(found, "is damaged") {
		t.Fatalf("Leftover = %q, %v; want a warning that names the damaged file", found, err)
	}
}

// startHelper starts the stand-in forwards process and waits for its state.
func startHelper(t *testing.T, dir string) *os.Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", DaemonCommand)
	cmd.Env = append(os.Environ(), helperDaemon+"="+dir)
	p := startProcess(t, cmd).Process
	for range 200 {
		if data, err := os.ReadFile(filepath.Join(dir, Dir, stateFile)); err == nil && strings.Contains(string(data), `"start"`) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the helper did not report its state")
	return nil
}

func waitHeld(t *testing.T, dir string) {
	t.Helper()
	d, err := envdir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 200 {
		if held, _ := d.Held(rel(lockFile)); held {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the lock was never taken")
}

func TestStopEndsTheProvenProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the lock holder is read from /proc/locks")
	}
	dir := newEnv(t)
	p := startHelper(t, dir)
	stopped, err := Stop(context.Background(), dir)
	if err != nil || !stopped {
		t.Fatalf("Stop = %v, %v", stopped, err)
	}
	// Stop returns once the process has ended, not merely let go of its
	// lock (it does so in its last moments): it is gone, or a zombie
	// waiting for this test to reap it.
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid)); err == nil {
		if rest := stat[bytes.LastIndexByte(stat, ')')+1:]; !bytes.HasPrefix(bytes.TrimSpace(rest), []byte("Z")) {
			t.Fatalf("the proven forwards process still runs when Stop returns: %s", stat)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, Dir, stateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("state.json was not removed")
	}
}
