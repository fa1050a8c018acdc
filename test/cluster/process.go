package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procInfo identifies a started process well enough to stop it later from
// another process (testcluster down): the PID plus its start time, so a
// recycled PID is never mistaken for ours.
type procInfo struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	Exe       string `json:"exe"`
	Log       string `json:"log"`
}

// process is a component this Go process started.
type process struct {
	procInfo
	done    chan struct{} // closed once the process has been reaped
	waitErr error
}

// startProcess starts a component with output to its log file. Attached
// processes get SIGKILL when the starting thread dies (a crashed or killed
// test must not leave a control plane running); detached ones get their own
// session, so they outlive `testcluster up` and ignore the terminal's ^C.
// Either way each leads its own process group, which stop signals as a whole.
func startProcess(name, exe string, args []string, logPath string, detach bool) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), exe, strings.Join(args, " "))
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = withoutEnv(os.Environ(), "KUBECONFIG")
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{
		procInfo: procInfo{Name: name, PID: cmd.Process.Pid, Exe: exe, Log: logPath},
		done:     make(chan struct{}),
	}
	p.StartTime, _ = procStartTime(p.PID)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// procStartTime reads the start time (clock ticks since boot) from
// /proc/PID/stat, and whether the process is a zombie.
func procStat(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false, err
	}
	// The command name (field 2) may contain spaces and parentheses; the
	// fields after the last ')' are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false, errors.New("malformed stat")
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, false, errors.New("malformed stat")
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0] == "Z", err
}

func procStartTime(pid int) (uint64, error) {
	start, _, err := procStat(pid)
	return start, err
}

// alive reports whether the process is still the one we started.
func (pi procInfo) alive() bool {
	if pi.PID <= 0 {
		return false
	}
	start, zombie, err := procStat(pi.PID)
	if err != nil || zombie {
		return false
	}
	return pi.StartTime == 0 || start == pi.StartTime
}

// stop sends SIGTERM to the process group, waits up to grace, then sends
// SIGKILL. It succeeds when the process is gone, including when it was gone
// already, so stopping twice is harmless.
func (pi procInfo) stop(grace time.Duration) error {
	if !pi.alive() {
		return nil
	}
	_ = syscall.Kill(-pi.PID, syscall.SIGTERM)
	if waitGone(pi, grace) {
		return nil
	}
	_ = syscall.Kill(-pi.PID, syscall.SIGKILL)
	if waitGone(pi, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", pi.Name, pi.PID)
}

func waitGone(pi procInfo, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !pi.alive() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePorts reserves n distinct loopback ports by listening on port 0, and
// releases them for the components to bind. Another program could grab one
// in between; Start retries with new ports when a component reports the
// address in use.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// state is what `testcluster up` leaves in DIR/state.json for `down`, and
// what Attach reads.
type state struct {
	Version         int        `json:"version"`
	Server          string     `json:"server"`
	Kubeconfig      string     `json:"kubeconfig"`
	NodeName        string     `json:"nodeName"`
	WebSocketTunnel bool       `json:"websocketTunnel"`
	Processes       []procInfo `json:"processes"`
}

const stateFile = "state.json"

func (s *state) write(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, stateFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	// A plain list for humans and shell scripts: "PID NAME" per line.
	var pids strings.Builder
	for _, p := range s.Processes {
		fmt.Fprintf(&pids, "%d %s\n", p.PID, p.Name)
	}
	return writeFileAtomic(filepath.Join(dir, "pids"), []byte(pids.String()), 0o644)
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

// logTail returns the end of a component's log for error messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tail(string(b), n)
}
