package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deploySpread runs podserver (http: it answers with its pod's name) in a
// Deployment of replicas pods whose readiness is an exec probe: a pod is Ready
// while no file named after it exists in notReady, so a test can take one
// pod out of Ready without touching the others.
func (c *cluster) deploySpread(t testing.TB, ns, name string, replicas int, notReady string) {
	t.Helper()
	c.apply(t, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: podserver  # ignored by the test kubelet, which runs the command on the host
        command: [%[3]q]
        args: ["--listen", "$(POD_IP):8443", "--mode", "http"]
        ports: [{name: https, containerPort: 8443}]
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: NOT_READY_DIR, value: %[4]q}
        - {name: MTLS_CERT, valueFrom: {secretKeyRef: {name: mtls, key: cert}}}
        - {name: MTLS_KEY, valueFrom: {secretKeyRef: {name: mtls, key: key}}}
        readinessProbe:
          exec: {command: ["sh", "-c", "test ! -e \"$NOT_READY_DIR/$POD_NAME\""]}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: https, port: 443, targetPort: https}]
`, name, replicas, podServer, notReady))
	c.kubectl(t, "-n", ns, "rollout", "status", "deploy/"+name, "--timeout=3m")
}

// notReadyDir is a directory the pods' probes can read.
func notReadyDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	return dir
}

// makeNotReady fails pod's readiness probe and waits until the API server
// shows it not Ready.
func (c *cluster) makeNotReady(t testing.TB, ns, dir, pod string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, pod), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.kubectl(t, "-n", ns, "wait", "--for=condition=Ready=false", "pod/"+pod, "--timeout=2m")
}

// whoServes makes n requests through addr and counts the answers per pod.
func (s *shop) whoServes(t testing.TB, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		body, err := httpsGet(addr, s.devClient())
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		f := strings.Fields(body)
		if len(f) < 3 || f[0] != "hello" || f[1] != "from" {
			t.Fatalf("request %d: answer %q", i, body)
		}
		got[f[2]]++
	}
	return got
}

// TestForwardSpreadsLikeAService: 40 connections to a Deployment's target go
// to every Ready pod and never to the one that is not Ready; a pod that
// leaves Ready while the forward runs stops getting connections; with --pin
// all go to one pod, as kubectl port-forward's do.
func TestForwardSpreadsLikeAService(t *testing.T) {
	s := newShop(t, false)
	dir := notReadyDir(t)
	s.c.deploySpread(t, s.ns, "orders", 4, dir)
	pods := s.c.pods(t, s.ns, "orders")
	if len(pods) != 4 {
		t.Fatalf("pods %v; want 4", pods)
	}
	out := pods[3]
	s.c.makeNotReady(t, s.ns, dir, out)

	f := s.forward(t, 2, "deploy/orders", ":https")
	got := s.whoServes(t, f.ipv4(t, 0), 40)
	for _, p := range pods[:3] {
		if got[p] == 0 {
			t.Errorf("Ready pod %s got none of 40 connections: %v", p, got)
		}
	}
	if got[out] != 0 {
		t.Errorf("pod %s, not Ready, got %d connections: %v", out, got[out], got)
	}
	t.Logf("40 connections over deploy/orders: %v", got)

	// A pod that leaves Ready under a running forward: once the forward has
	// heard (there is no bound on the watch's delay, so a round of requests
	// is repeated until it has), it gets no new connection at all.
	gone := pods[0]
	s.c.makeNotReady(t, s.ns, dir, gone)
	for round := 0; ; round++ {
		if s.whoServes(t, f.ipv4(t, 0), 3)[gone] == 0 {
			break
		}
		if round == 50 {
			t.Fatalf("pod %s still gets connections after leaving Ready", gone)
		}
	}
	after := s.whoServes(t, f.ipv4(t, 0), 30)
	if after[gone] != 0 || after[out] != 0 || after[pods[1]] == 0 || after[pods[2]] == 0 {
		t.Errorf("after %s left Ready: %v; want all on %s and %s", gone, after, pods[1], pods[2])
	}

	pinned := s.forward(t, 2, "--pin", "deploy/orders", ":https")
	one := s.whoServes(t, pinned.ipv4(t, 0), 40)
	if len(one) != 1 {
		t.Errorf("--pin spread 40 connections over %v; want one pod", one)
	}
}
