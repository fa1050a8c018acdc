package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// Restart backoff. The kubelet starts at 10s and caps at 5m; tests want
	// to see restarts within seconds, so this is shorter but still doubles.
	initialBackoff = 1 * time.Second
	maxBackoff     = 30 * time.Second
	// backoffReset: a container that ran this long restarts quickly again.
	backoffReset = 60 * time.Second
)

// container runs one container of a pod as a host process, restarting it
// per the pod's restartPolicy, and tracks the state the API reports.
type container struct {
	w    *podWorker
	spec v1.Container
	init bool

	mu       sync.Mutex
	restarts int32
	state    v1.ContainerState
	last     v1.ContainerState
	ready    bool
	started  bool
	pid      int           // process group of the running process, 0 if none
	runEnd   chan struct{} // closed when the current process has exited
	stopCh   chan struct{} // closed when the container must stop for good
	grace    time.Duration // grace for the stop, set before stopCh closes
	loopDone chan struct{} // closed when loop returns
	runs     int           // number of processes started, for log waits
}

func newContainer(w *podWorker, spec v1.Container, init bool) *container {
	return &container{
		w:        w,
		spec:     spec,
		init:     init,
		state:    v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		stopCh:   make(chan struct{}),
		loopDone: make(chan struct{}),
	}
}

func (c *container) logPath(restart int32) string {
	return filepath.Join(c.w.logDir, c.spec.Name, strconv.Itoa(int(restart))+".log")
}

func (c *container) containerID(restart int32) string {
	return fmt.Sprintf("testkubelet://%s/%s/%d", c.w.uid, c.spec.Name, restart)
}

func (c *container) stopped() bool {
	select {
	case <-c.stopCh:
		return true
	default:
		return false
	}
}

// status snapshots the container for the pod status.
func (c *container) status() v1.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	started := c.started
	cs := v1.ContainerStatus{
		Name:                 c.spec.Name,
		Image:                c.spec.Image,
		ImageID:              c.spec.Image,
		State:                *c.state.DeepCopy(),
		LastTerminationState: *c.last.DeepCopy(),
		Ready:                c.ready,
		RestartCount:         c.restarts,
		Started:              &started,
	}
	switch {
	case c.state.Running != nil:
		cs.ContainerID = c.containerID(c.restarts)
	case c.state.Terminated != nil:
		cs.ContainerID = c.state.Terminated.ContainerID
	case c.last.Terminated != nil:
		cs.ContainerID = c.last.Terminated.ContainerID
	}
	return cs
}

func (c *container) setState(f func()) {
	c.mu.Lock()
	f()
	c.mu.Unlock()
	c.w.markDirty()
}

// loop runs the container until it is stopped or, per the restart policy,
// finished for good. For an init container it reports whether the pod may
// proceed (the container succeeded).
func (c *container) loop(ctx context.Context, policy v1.RestartPolicy) (succeeded bool) {
	defer close(c.loopDone)
	k := c.w.k
	backoff := initialBackoff
	for {
		if c.stopped() || ctx.Err() != nil {
			return false
		}
		started := time.Now()
		exit, reason, message, err := c.runOnce(ctx)
		if err != nil {
			// Configuration errors (a Secret not yet readable, a bad
			// securityContext) are retried whatever the restart policy,
			// as the kubelet does.
			pod := c.w.currentPod()
			k.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: %v", err)
			c.setState(func() {
				c.state = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}}
			})
			if !c.sleep(backoff) {
				return false
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		if c.stopped() {
			return false
		}
		restart := false
		switch policy {
		case v1.RestartPolicyAlways:
			restart = !c.init || exit != 0
		case v1.RestartPolicyOnFailure:
			restart = exit != 0
		}
		if c.init && exit == 0 {
			return true
		}
		if !restart {
			return false
		}
		if time.Since(started) >= backoffReset {
			backoff = initialBackoff
		}
		pod := c.w.currentPod()
		k.recorder.Eventf(pod, v1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.spec.Name, pod.Name)
		c.setState(func() {
			c.last = c.state
			c.state = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s (last exit %d: %s %s)", backoff, c.spec.Name, pod.Name, exit, reason, message),
			}}
		})
		if !c.sleep(backoff) {
			return false
		}
		backoff = min(backoff*2, maxBackoff)
		c.setState(func() { c.restarts++ })
	}
}

// sleep waits for d unless the container is stopped first.
func (c *container) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stopCh:
		return false
	}
}

// runOnce starts the process and waits for it to end. A non-nil error means
// the process could not be configured; failures to exec count as an exit
// (StartError, 128), as with container runtimes.
func (c *container) runOnce(ctx context.Context) (exit int32, reason, message string, err error) {
	w, k := c.w, c.w.k
	pod := w.currentPod()
	ip := w.podIP()
	ident, err := containerIdentity(pod, &c.spec, os.Getuid())
	if err != nil {
		return 0, "", "", err
	}
	env, err := resolveEnv(ctx, k, envInput{
		pod: pod, container: &c.spec, podIP: ip,
		serviceEnv: k.serviceEnv(), allocatable: k.nodeCaps,
	})
	if err != nil {
		return 0, "", "", err
	}
	command, args := expandCommand(&c.spec, env)
	if len(command) == 0 {
		return 0, "", "", fmt.Errorf("container %s has no command: the test kubelet runs host processes and has no image entrypoint (image %q is ignored)", c.spec.Name, c.spec.Image)
	}
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	penv := processEnv(env, hostname, ident.home)
	pathVar := defaultPath
	if p, ok := env["PATH"]; ok {
		pathVar = p
	}

	c.mu.Lock()
	restart := c.restarts
	c.mu.Unlock()
	logPath := c.logPath(restart)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return 0, "", "", err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, "", "", err
	}
	defer logFile.Close()

	now := metav1.Now()
	path, lerr := lookPath(command[0], pathVar, isExecutable)
	var cmd *exec.Cmd
	if lerr == nil {
		cmd = exec.Command(path)
		cmd.Args = append(append([]string{command[0]}, command[1:]...), args...)
		cmd.Env = penv
		cmd.Dir = c.spec.WorkingDir
		if cmd.Dir == "" {
			cmd.Dir = "/"
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{
			// Its own process group stands in for the container boundary:
			// signals reach everything the process spawned.
			Setpgid: true,
			// A kubelet that dies without cleaning up (SIGKILL, crashed
			// test) must not leave pods running on the host.
			Pdeathsig: syscall.SIGKILL,
		}
		if ident.set {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: ident.uid, Gid: ident.gid, Groups: ident.groups}
		}
		lerr = cmd.Start()
	}
	if lerr != nil {
		fmt.Fprintf(logFile, "testkubelet: start %s: %v\n", command[0], lerr)
		c.setState(func() {
			c.state = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				ExitCode: 128, Reason: "StartError", Message: lerr.Error(),
				StartedAt: now, FinishedAt: now, ContainerID: c.containerID(restart),
			}}
			c.ready, c.started = false, false
		})
		k.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: failed to start container %s: %v", c.spec.Name, lerr)
		return 128, "StartError", lerr.Error(), nil
	}

	runEnd := make(chan struct{})
	c.setState(func() {
		c.pid = cmd.Process.Pid
		c.runEnd = runEnd
		c.runs++
		c.state = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}}
		c.started = c.spec.StartupProbe == nil
		c.ready = c.spec.ReadinessProbe == nil && c.started && !c.init
	})
	if c.stopped() {
		// stop() ran between our start and the pid becoming visible to it.
		c.mu.Lock()
		grace := c.grace
		c.mu.Unlock()
		go c.kill(grace, "Stopping container")
	}
	k.log.Printf("pod %s/%s: container %s started (pid %d): %q", pod.Namespace, pod.Name, c.spec.Name, cmd.Process.Pid, cmd.Args)
	k.recorder.Eventf(pod, v1.EventTypeNormal, "Started", "Started container %s", c.spec.Name)

	probeCtx, stopProbes := context.WithCancel(ctx)
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		c.probe(probeCtx, pod, ip, penv)
	}()

	waitErr := cmd.Wait()
	// When a container's main process ends, the container ends: take the
	// rest of its process group with it.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	stopProbes()
	<-probesDone
	finished := metav1.Now()

	exit = 0
	if waitErr != nil {
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) {
			exit, reason, message = 128, "Error", waitErr.Error()
		}
	}
	if ps := cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Signaled():
				exit = 128 + int32(ws.Signal())
			case ws.Exited():
				exit = int32(ws.ExitStatus())
			}
		}
	}
	if reason == "" {
		reason = "Completed"
		if exit != 0 {
			reason = "Error"
		}
	}
	c.setState(func() {
		c.pid = 0
		c.state = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode: exit, Reason: reason, Message: message,
			StartedAt: now, FinishedAt: finished, ContainerID: c.containerID(restart),
		}}
		c.ready = false
	})
	close(runEnd)
	k.log.Printf("pod %s/%s: container %s exited %d (%s)", pod.Namespace, pod.Name, c.spec.Name, exit, reason)
	return exit, reason, message, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// stop ends the container for good: SIGTERM to its process group, SIGKILL
// after grace, and no restart.
func (c *container) stop(grace time.Duration) {
	c.mu.Lock()
	select {
	case <-c.stopCh:
	default:
		c.grace = grace
		close(c.stopCh)
	}
	c.mu.Unlock()
	c.kill(grace, "Stopping container")
	<-c.loopDone
}

// killNow skips whatever grace is left.
func (c *container) killNow() {
	c.mu.Lock()
	pid := c.pid
	c.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// kill terminates the running process, if any, and waits for it to exit.
func (c *container) kill(grace time.Duration, why string) {
	c.mu.Lock()
	pid, runEnd := c.pid, c.runEnd
	c.mu.Unlock()
	if pid == 0 || runEnd == nil {
		return
	}
	select {
	case <-runEnd:
		return
	default:
	}
	pod := c.w.currentPod()
	c.w.k.recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "%s %s", why, c.spec.Name)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-runEnd:
	case <-t.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-runEnd
	}
}

// runEnded returns a channel that is closed once run number n (1-based) has
// ended, so a log follower knows when no more output can come.
func (c *container) runEnded(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == n && c.runEnd != nil {
		return c.runEnd
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}
