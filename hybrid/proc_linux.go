//go:build linux

package hybrid

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/devmtls/devmtls/internal/envdir"
	"golang.org/x/sys/unix"
)

// processStart is the process's start time in clock ticks after boot, field
// 22 of /proc/PID/stat.
func processStart(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself; fields are counted after its last ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	const startField = 22 - 3 // fields[0] is field 3
	if len(fields) <= startField {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return fields[startField], nil
}

// proveForwards checks, on the running system, that st.PID is the forwards
// process devmtls started for this environment: it holds the flock on this
// environment's forwards lock file (/proc/locks), it started when the state
// says (so it is not another process given the same PID), and it runs
// devmtls's forwards-daemon. The PID is pinned with a pidfd first, so the
// signal reaches the process checked or none.
func proveForwards(d *envdir.Dir, st *State) (process, error) {
	fail := func(format string, args ...any) error {
		return &ProofError{PID: st.PID, State: d.Path(rel(stateFile)), EnvDir: d.Path("."), Finding: fmt.Sprintf(format, args...)}
	}
	pidfd, err := unix.PidfdOpen(st.PID, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil, fail("no such process runs")
	case errors.Is(err, unix.ENOSYS):
		pidfd = -1 // before Linux 5.3: the start time check alone guards against reuse
	case err != nil:
		return nil, fail("it cannot be opened (%v)", err)
	}
	p := &linuxProcess{pid: st.PID, pidfd: pidfd}
	if err := p.check(d, st, fail); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

func (p *linuxProcess) check(d *envdir.Dir, st *State, fail func(string, ...any) error) error {
	start, err := processStart(p.pid)
	if err != nil {
		return fail("its start time cannot be read (%v)", err)
	}
	if st.Start == "" || start != st.Start {
		return fail("it started at tick %s, not at the recorded %q, so it is another process", start, st.Start)
	}
	fi, err := d.Lstat(rel(lockFile))
	if err != nil {
		return fail("the lock file cannot be read (%v)", err)
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fail("the lock file cannot be identified")
	}
	holders, err := flockHolders(sys.Ino)
	if err != nil {
		return fail("/proc/locks cannot be read (%v)", err)
	}
	if !slices.Contains(holders, p.pid) {
		return fail("it does not hold the forwards lock %s (held by %v)", d.Path(rel(lockFile)), holders)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
	if err != nil {
		return fail("its command line cannot be read (%v)", err)
	}
	if !slices.Contains(strings.Split(string(cmdline), "\x00"), DaemonCommand) {
		return fail("it is not devmtls %s (its command is %q)", DaemonCommand, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
	}
	return nil
}

// flockHolders lists the PIDs holding a flock(2) lock on the inode ino, from
// /proc/locks ("1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"; lines with
// "->" are waiters). The device is not compared: overlay file systems report
// a different one to stat than to /proc/locks.
func flockHolders(ino uint64) ([]int, error) {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 || dev[2] != strconv.FormatUint(ino, 10) {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, sc.Err()
}

type linuxProcess struct {
	pid   int
	pidfd int
}

func (p *linuxProcess) signal(sig unix.Signal) error {
	if p.pidfd >= 0 {
		return unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
	return unix.Kill(p.pid, sig)
}

func (p *linuxProcess) terminate() error { return p.signal(unix.SIGTERM) }

func (p *linuxProcess) kill() { _ = p.signal(unix.SIGKILL) }

// exited: its pidfd turns readable when it ends; without one, its /proc
// entry is gone or a zombie's.
func (p *linuxProcess) exited() bool {
	if p.pidfd >= 0 {
		fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err == nil && n > 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && strings.HasPrefix(strings.TrimSpace(string(data[i+1:])), "Z")
}

func (p *linuxProcess) release() {
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
	}
}
