package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probe runs the container's startup, readiness and liveness probes for
// one run of its process, with the kubelet's defaults and thresholds.
func (c *container) probe(ctx context.Context, pod *v1.Pod, ip string, env []string) {
	spec := &c.spec
	grace := func(p *v1.Probe) time.Duration {
		if p.TerminationGracePeriodSeconds != nil {
			return time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
		}
		return time.Duration(terminationGrace(pod)) * time.Second
	}
	if sp := spec.StartupProbe; sp != nil {
		c.probeLoop(ctx, "Startup", sp, pod, ip, env, func(ok bool) bool {
			if ok {
				c.setState(func() {
					c.started = true
					c.ready = spec.ReadinessProbe == nil && !c.init
				})
			} else {
				go c.kill(grace(sp), "Container failed startup probe, will be restarted:")
			}
			return true
		})
		c.mu.Lock()
		started := c.started
		c.mu.Unlock()
		if !started {
			return
		}
	}
	if c.init {
		return
	}
	var wg sync.WaitGroup
	if rp := spec.ReadinessProbe; rp != nil {
		wg.Go(func() {
			c.probeLoop(ctx, "Readiness", rp, pod, ip, env, func(ok bool) bool {
				c.setState(func() { c.ready = ok })
				return false
			})
		})
	}
	if lp := spec.LivenessProbe; lp != nil {
		wg.Go(func() {
			c.probeLoop(ctx, "Liveness", lp, pod, ip, env, func(ok bool) bool {
				if ok {
					return false
				}
				// Asynchronously: the kill waits for the process to end,
				// and the process's end waits for the probes to stop.
				go c.kill(grace(lp), "Container failed liveness probe, will be restarted:")
				return true
			})
		})
	}
	wg.Wait()
}

// probeLoop runs p every period after the initial delay and calls onResult
// when successThreshold successes or failureThreshold failures in a row are
// reached; onResult returning true ends the loop.
func (c *container) probeLoop(ctx context.Context, kind string, p *v1.Probe, pod *v1.Pod, ip string, env []string, onResult func(bool) bool) {
	period := time.Duration(max(p.PeriodSeconds, 0)) * time.Second
	if period == 0 {
		period = 10 * time.Second
	}
	timeout := time.Duration(max(p.TimeoutSeconds, 0)) * time.Second
	if timeout == 0 {
		timeout = time.Second
	}
	successThreshold := max(p.SuccessThreshold, 1)
	failureThreshold := p.FailureThreshold
	if failureThreshold <= 0 {
		failureThreshold = 3
	}
	if d := time.Duration(p.InitialDelaySeconds) * time.Second; d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
	var successes, failures int32
	for {
		ok, msg := c.check(ctx, p, ip, env, timeout)
		if ctx.Err() != nil {
			return
		}
		if ok {
			successes, failures = successes+1, 0
			if successes == successThreshold && onResult(true) {
				return
			}
		} else {
			successes, failures = 0, failures+1
			c.w.k.recorder.Eventf(pod, v1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
			if failures == failureThreshold && onResult(false) {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}

// check performs one probe. As in the kubelet, the target host defaults to
// the pod IP, and a named port is looked up in the container's ports.
func (c *container) check(ctx context.Context, p *v1.Probe, ip string, env []string, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, &c.spec)
		if err != nil {
			return false, err.Error()
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = ip
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := resolvePort(g.Port, &c.spec)
		if err != nil {
			return false, err.Error()
		}
		host := g.Host
		if host == "" {
			host = ip
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+path, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/1.37")
		for _, h := range g.HTTPHeaders {
			if strings.EqualFold(h.Name, "Host") {
				req.Host = h.Value
			} else {
				req.Header.Add(h.Name, h.Value)
			}
		}
		// Like the kubelet: no certificate verification, no keep-alive.
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return true, ""
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return false, "exec probe without command"
		}
		cmd := exec.CommandContext(ctx, p.Exec.Command[0], p.Exec.Command[1:]...)
		cmd.Env = env
		cmd.Dir = c.spec.WorkingDir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if ident, err := containerIdentity(c.w.currentPod(), &c.spec, os.Getuid()); err == nil && ident.set {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: ident.uid, Gid: ident.gid, Groups: ident.groups}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return true, ""
	}
	return false, "probe type not supported by the test kubelet"
}

// resolvePort turns a probe's port (number or container port name) into a
// number, as the kubelet's findPortByName does.
func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntValue() <= 0 || p.IntValue() > 65535 {
			return 0, fmt.Errorf("invalid port %d", p.IntValue())
		}
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found in container %s", p.StrVal, c.Name)
}
