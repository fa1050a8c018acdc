package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cluster "github.com/devmtls/devmtls/test/cluster"
)

// transferSize is what the issue asks each port-forward to carry each way.
const transferSize = 256 << 20

// TestCluster runs the proof against two clusters side by side, one per
// WebSocket path of the API server: with the node declaring
// ExtendWebSocketsToKubelet the API server hands kubectl's WebSocket tunnel
// to the kubelet; without it the API server translates it to SPDY itself.
func TestCluster(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tunnel bool
	}{
		{"websocket-tunnel-to-kubelet", true},
		{"spdy-translated-by-apiserver", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testForwardPath(t, tc.tunnel)
		})
	}
}

func testForwardPath(t *testing.T, tunnel bool) {
	echo := buildEcho(t)
	c, t0 := startCluster(t, tunnel)
	kc := c.Kubeconfig()
	tm := c.Timings()
	t.Logf("cold start (processes, binaries cached): /readyz after %s, node Ready after %s", tm.Readyz.Round(time.Millisecond), tm.NodeReady.Round(time.Millisecond))

	apply(t, kc, echoManifest(echo, 2))
	eventually(t, 3*time.Minute, "a Ready echo pod", func() (bool, string) {
		pods := podTable(t, kc, "app=echo")
		for _, p := range pods {
			if p.ready {
				return true, ""
			}
		}
		return false, fmt.Sprint(pods)
	})
	t.Logf("first Ready pod %s after cluster.Start was called", time.Since(t0).Round(time.Millisecond))
	kubectl(t, kc, "rollout", "status", "deployment/echo", "--timeout=3m")
	pods := readyPods(t, kc, "app=echo")
	if len(pods) != 2 {
		t.Fatalf("want 2 ready pods after rollout, got %v", pods)
	}

	// What the kubelet gave the process: env from a Secret, a ConfigMap and
	// the downward API, $(VAR) expansion in env and args, workingDir, and
	// the pod's runAsUser/runAsGroup.
	logs := kubectl(t, kc, "logs", "pod/"+pods[0])
	for _, want := range []string{
		"uid=65534 gid=65534 cwd=/tmp",
		"env CERT=-----BEGIN CERTIFICATE-----\ndGVzdA==\n-----END CERTIFICATE-----",
		"env GREETING=hello",
		"env MSG=hello from " + pods[0],
		"env POD_NAMESPACE=default",
		"listening on 127.",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("kubectl logs %s: missing %q in:\n%s", pods[0], want, logs)
		}
	}
	ips := strings.Fields(kubectl(t, kc, "get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[*].status.podIP}"))
	if len(ips) != 2 || ips[0] == ips[1] || !strings.HasPrefix(ips[0], "127.") {
		t.Errorf("pod IPs %v: want two distinct 127.x addresses", ips)
	}

	before := kubeletStats(t, c)
	metricsBefore := apiserverMetrics(t, kc)
	for _, fwd := range []struct {
		target string
		port   int
	}{
		{"svc/echo", 80}, // named targetPort "echo" -> 8080
		{"pod/" + pods[0], 8080},
	} {
		addr := portForward(t, kc, fwd.target, fwd.port)
		d, err := echoTransfer(addr, transferSize, true)
		if err != nil {
			t.Fatalf("kubectl port-forward %s: %v", fwd.target, err)
		}
		t.Logf("kubectl port-forward %s: 256 MiB each way, sha256 verified, %.0f MB/s", fwd.target, float64(transferSize)/d.Seconds()/1e6)
	}
	after := kubeletStats(t, c)
	metricsAfter := apiserverMetrics(t, kc)
	proxied := metricsAfter[`apiserver_websocket_streaming_requests_total{proxy_type="proxied_to_kubelet",subresource="portforward"}`] -
		metricsBefore[`apiserver_websocket_streaming_requests_total{proxy_type="proxied_to_kubelet",subresource="portforward"}`]
	tunnelled := metricsAfter[`apiserver_stream_tunnel_requests_total{code="101"}`] - metricsBefore[`apiserver_stream_tunnel_requests_total{code="101"}`]
	if tunnel {
		// The kubelet unwrapped both WebSocket tunnels itself.
		if got := after.WebSocketTunnel - before.WebSocketTunnel; got != 2 || after.SPDY != before.SPDY {
			t.Errorf("kubelet saw %+v then %+v: want 2 more WebSocket tunnels and no SPDY", before, after)
		}
		if proxied != 2 || tunnelled != 0 {
			t.Errorf("API server: %v proxied to kubelet, %v tunnels translated: want 2 and 0", proxied, tunnelled)
		}

		// kubectl's SPDY client still works against a declaring node.
		addr := portForward(t, kc, "pod/"+pods[1], 8080, "KUBECTL_PORT_FORWARD_WEBSOCKETS=false")
		if _, err := echoTransfer(addr, 16<<20, true); err != nil {
			t.Fatalf("kubectl port-forward over SPDY: %v", err)
		}
		if final := kubeletStats(t, c); final.SPDY != after.SPDY+1 {
			t.Errorf("kubelet saw %+v after an SPDY port-forward, want one more SPDY than %+v", final, after)
		}
	} else {
		// The API server turned both WebSocket tunnels into SPDY.
		if got := after.SPDY - before.SPDY; got != 2 || after.WebSocketTunnel != before.WebSocketTunnel {
			t.Errorf("kubelet saw %+v then %+v: want 2 more SPDY and no WebSocket tunnel", before, after)
		}
		if tunnelled != 2 || proxied != 0 {
			t.Errorf("API server: %v tunnels translated, %v proxied to kubelet: want 2 and 0", tunnelled, proxied)
		}
	}

	// A deleted pod is finalized (never stuck Terminating), and the real
	// ReplicaSet controller replaces it with one that becomes Ready.
	kubectl(t, kc, "delete", "pod", pods[0], "--timeout=2m")
	var replacement string
	eventually(t, 3*time.Minute, "a Ready replacement pod", func() (bool, string) {
		table := podTable(t, kc, "app=echo")
		replacement = ""
		ready := 0
		for _, p := range table {
			if p.name == pods[0] {
				return false, fmt.Sprint(table)
			}
			if p.ready {
				ready++
				if p.name != pods[1] {
					replacement = p.name
				}
			}
		}
		return ready == 2 && replacement != "", fmt.Sprint(table)
	})
	if owner := kubectl(t, kc, "get", "pod", replacement, "-o", "jsonpath={.metadata.ownerReferences[0].kind}"); owner != "ReplicaSet" {
		t.Errorf("replacement %s owned by %q, want ReplicaSet", replacement, owner)
	}
	addr := portForward(t, kc, "pod/"+replacement, 8080)
	if _, err := echoTransfer(addr, 1<<20, true); err != nil {
		t.Errorf("port-forward to the replacement pod: %v", err)
	}

	// A user with a valid certificate but no RBAC is forbidden.
	alice, err := c.UserKubeconfig("alice", "devmtls:testers")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := kubectlErr(alice, "", "get", "pods"); err == nil || !strings.Contains(out, "forbidden") || !strings.Contains(out, `"alice"`) {
		t.Errorf("kubectl get pods as alice: err=%v, output %q: want forbidden for alice", err, out)
	}
	if out, err := kubectlErr(alice, "", "port-forward", "pod/"+replacement, ":8080"); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("kubectl port-forward as alice: err=%v, output %q: want forbidden", err, out)
	}
}

// TestPodLifecycle checks what the test kubelet does with processes:
// restart policies and backoff, exit codes, configuration errors, readiness
// probes, and SIGTERM then SIGKILL on deletion.
func TestPodLifecycle(t *testing.T) {
	_, err := os.Stat("/bin/sh")
	need(t, "/bin/sh", err)
	echo := buildEcho(t)
	c, _ := startCluster(t, false)
	kc := c.Kubeconfig()
	marker := fmt.Sprintf("devmtls-stubborn-%d", time.Now().UnixNano())
	scratch := t.TempDir()

	apply(t, kc, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  restartPolicy: Always
  containers:
  - {name: c, image: x, command: [/bin/sh, -c, 'echo "run $$"; exit 3']}
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: x, command: [/bin/sh, -c, 'echo done']}
---
apiVersion: v1
kind: Pod
metadata: {name: fail}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: x, command: [/bin/sh, -c, 'exit 7']}
---
apiVersion: v1
kind: Pod
metadata: {name: retry}
spec:
  restartPolicy: OnFailure
  containers:
  - name: c
    image: x
    command: [/bin/sh, -c, 'if [ -e "$MARK" ]; then exit 0; fi; touch "$MARK"; exit 1']
    env: [{name: MARK, value: %q}]
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: x, command: [/bin/sh, -c, 'trap "" TERM; echo %s; while :; do sleep 1; done']}
---
apiVersion: v1
kind: Pod
metadata: {name: notready}
spec:
  containers:
  - name: c
    image: x
    command: [%q, -listen, "$(POD_IP):8080"]
    env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
    readinessProbe: {tcpSocket: {port: 8081}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - {name: c, image: x, command: [/bin/true]}
`, filepath.Join(scratch, "retried"), marker, echo))

	status := func(pod, jsonpath string) string {
		out, _ := kubectlErr(kc, "", "get", "pod", pod, "-o", "jsonpath="+jsonpath)
		return out
	}
	waitStatus := func(pod, jsonpath, want string) {
		t.Helper()
		eventually(t, 2*time.Minute, pod+" "+jsonpath+"="+want, func() (bool, string) {
			got := status(pod, jsonpath)
			return got == want, got
		})
	}

	waitStatus("done", "{.status.phase}", "Succeeded")
	waitStatus("fail", "{.status.phase} {.status.containerStatuses[0].state.terminated.exitCode}", "Failed 7")
	waitStatus("retry", "{.status.phase} {.status.containerStatuses[0].restartCount}", "Succeeded 1")
	eventually(t, 2*time.Minute, "crash restarted twice", func() (bool, string) {
		got := status("crash", "{.status.phase} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.exitCode}")
		f := strings.Fields(got)
		if len(f) == 3 && f[0] == "Running" && f[2] == "3" {
			n, _ := strconv.Atoi(f[1])
			return n >= 2, got
		}
		return false, got
	})
	if out := kubectl(t, kc, "logs", "crash", "--previous"); !strings.HasPrefix(out, "run ") {
		t.Errorf("kubectl logs --previous crash = %q, want the previous run's output", out)
	}
	waitStatus("nonroot", "{.status.containerStatuses[0].state.waiting.reason}", "CreateContainerConfigError")

	// Readiness is the probe's verdict, not the process's: after failed
	// probes the pod is Running but not Ready.
	eventually(t, 2*time.Minute, "failed readiness probes on notready", func() (bool, string) {
		out := kubectl(t, kc, "get", "events", "--field-selector", "involvedObject.name=notready,reason=Unhealthy", "-o", "jsonpath={.items[*].count}")
		total := 0
		for _, f := range strings.Fields(out) {
			n, _ := strconv.Atoi(f)
			total += n
		}
		return total >= 3, out
	})
	if got := status("notready", `{.status.phase} {.status.conditions[?(@.type=="Ready")].status}`); got != "Running False" {
		t.Errorf("notready: phase and Ready = %q, want \"Running False\"", got)
	}

	// A process that ignores SIGTERM is killed after the grace period and
	// the pod is removed; nothing of it stays on the host.
	waitStatus("stubborn", "{.status.phase}", "Running")
	if len(processesWith(marker)) == 0 {
		t.Fatalf("stubborn's process (%s) not found on the host", marker)
	}
	kubectl(t, kc, "delete", "pod", "stubborn", "--timeout=2m")
	if pids := processesWith(marker); len(pids) > 0 {
		t.Errorf("processes of deleted pod stubborn still running: %v", pids)
	}

	// The node keeps renewing its Lease, so the node lifecycle controller
	// never marks it NotReady.
	lease := func() string {
		return kubectl(t, kc, "get", "lease", "-n", "kube-node-lease", c.NodeName(), "-o", "jsonpath={.spec.renewTime}")
	}
	first := lease()
	eventually(t, time.Minute, "a lease renewal", func() (bool, string) {
		now := lease()
		return now != first, now
	})
}

// TestStartFailureCleansUp makes the API server fail to start and checks
// that Start stopped the etcd it had already started.
func TestStartFailureCleansUp(t *testing.T) {
	bins := *binaries(t)
	bins.APIServer = "/bin/false"
	dir := t.TempDir()
	_, err := cluster.Start(context.Background(), cluster.Options{Dir: dir, Binaries: &bins, Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver exited") {
		t.Fatalf("Start with a failing API server: err = %v, want kube-apiserver exited", err)
	}
	if pids := processesWith(dir); len(pids) > 0 {
		t.Errorf("processes of the failed cluster still running: %v", pids)
	}
}

type podRow struct {
	name  string
	ready bool
}

func podTable(t testing.TB, kubeconfig, selector string) []podRow {
	t.Helper()
	out := kubectl(t, kubeconfig, "get", "pods", "-l", selector, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}`)
	var rows []podRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rows = append(rows, podRow{name: f[0], ready: len(f) == 2 && f[1] == "True"})
	}
	return rows
}

func readyPods(t testing.TB, kubeconfig, selector string) []string {
	var names []string
	for _, p := range podTable(t, kubeconfig, selector) {
		if p.ready {
			names = append(names, p.name)
		}
	}
	return names
}

func kubeletStats(t testing.TB, c *cluster.Cluster) cluster.PortForwardStats {
	t.Helper()
	s, err := c.KubeletPortForwardStats(context.Background())
	if err != nil {
		t.Fatalf("kubelet stats: %v", err)
	}
	return s
}

// apiserverMetrics reads the API server's counters from /metrics.
func apiserverMetrics(t testing.TB, kubeconfig string) map[string]float64 {
	t.Helper()
	out := kubectl(t, kubeconfig, "get", "--raw", "/metrics")
	m := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// eventually polls cond until it holds or timeout passes; the last detail
// goes into the failure message.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// processesWith lists the PIDs of processes whose command line contains s.
func processesWith(s string) []int {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var pids []int
	re := regexp.MustCompile(`^\d+$`)
	for _, e := range entries {
		if !re.MatchString(e.Name()) || e.Name() == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(strings.TrimSpace(string(st[i+1:])), "Z") {
				continue // exited, waiting to be reaped
			}
		}
		n, _ := strconv.Atoi(e.Name())
		pids = append(pids, n)
	}
	return pids
}
