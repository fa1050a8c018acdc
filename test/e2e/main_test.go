// Package e2e holds end-to-end tests that drive the real devmtls binary against
// the real test cluster (test/cluster: kube-apiserver, controller-manager,
// scheduler, etcd and a test kubelet), real kubectl and real PostgreSQL.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testenv"
)

// Built once in TestMain.
var (
	repoRoot   string
	devmtlsBin string
	podServer  string
	tcBin      string // test/cluster's testcluster CLI
	workDir    string
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	code := m.Run()
	teardown()
	os.Exit(code)
}

func setup() error {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	var err error
	if workDir, err = os.MkdirTemp("", "devmtls-e2e-"); err != nil {
		return err
	}
	devmtlsBin = filepath.Join(workDir, "bin", "devmtls")
	podServer = filepath.Join(workDir, "bin", "podserver")
	tcBin = filepath.Join(workDir, "bin", "testcluster")
	builds := []struct{ dir, out, pkg string }{
		{repoRoot, devmtlsBin, "./cmd/devmtls"},
		{repoRoot, podServer, "./test/e2e/internal/podserver"},
		{filepath.Join(repoRoot, "test", "cluster"), tcBin, "./cmd/testcluster"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	// Pods run as other users (PostgreSQL refuses root), so they must be able to
	// reach the binaries.
	os.Chmod(workDir, 0o755)
	os.Chmod(filepath.Join(workDir, "bin"), 0o755)
	return nil
}

// cleanups run at the end of the run (images built once for every test).
var cleanups []func()

func teardown() {
	for _, f := range cleanups {
		f()
	}
	clustersMu.Lock()
	for _, c := range clusters {
		c.stop()
	}
	clustersMu.Unlock()
	os.RemoveAll(workDir)
}

// cluster is one running test control plane.
type cluster struct {
	dir        string
	kubeconfig string
	tunnel     bool
	err        error
}

var (
	clustersMu sync.Mutex
	clusters   = map[bool]*cluster{}
)

// testCluster returns the shared cluster (starting it on first use). tunnel
// selects the variant whose node declares ExtendWebSocketsToKubelet, so the API
// server tunnels WebSocket port-forwards instead of translating them to SPDY.
func testCluster(t testing.TB, tunnel bool) *cluster {
	t.Helper()
	testenv.LookPath(t, "kubectl", "install kubectl (the Cloud SDK ships it)")
	testenv.LookPath(t, "etcd", "apt-get install etcd-server")
	clustersMu.Lock()
	defer clustersMu.Unlock()
	c, ok := clusters[tunnel]
	if !ok {
		c = &cluster{tunnel: tunnel, dir: filepath.Join(workDir, fmt.Sprintf("cluster-tunnel-%v", tunnel))}
		c.err = c.start()
		clusters[tunnel] = c
	}
	if c.err != nil {
		if testenv.InCI() {
			t.Fatalf("test cluster: %v", c.err)
		}
		t.Skipf("skipping: the test cluster did not start: %v", c.err)
	}
	return c
}

func (c *cluster) start() error {
	args := []string{"up", "--dir", c.dir}
	if c.tunnel {
		args = append(args, "--websocket-tunnel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute) // a cold build of Kubernetes included
	defer cancel()
	cmd := exec.CommandContext(ctx, tcBin, args...)
	cmd.Dir = filepath.Join(repoRoot, "test", "cluster")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testcluster up: %v\n%s", err, stderr.String())
	}
	line := strings.TrimSpace(stdout.String())
	c.kubeconfig = strings.TrimPrefix(line, "export KUBECONFIG=")
	if c.kubeconfig == line {
		return fmt.Errorf("testcluster up printed %q, want export KUBECONFIG=…", line)
	}
	return nil
}

func (c *cluster) stop() {
	if c.err != nil && c.kubeconfig == "" {
		// A failed start cleans up after itself.
		return
	}
	cmd := exec.Command(tcBin, "down", "--dir", c.dir)
	cmd.Dir = filepath.Join(repoRoot, "test", "cluster")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster down: %v\n%s", err, out)
	}
}

// kubectl runs the real kubectl against the cluster.
func (c *cluster) kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.kubectlErr(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) kubectlErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apply feeds a manifest to kubectl apply.
func (c *cluster) apply(t testing.TB, ns, manifest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.kubeconfig, "-n", ns, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// stats reports which port-forward paths the kubelet has served.
func (c *cluster) stats(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(tcBin, "stats", "--dir", c.dir)
	cmd.Dir = filepath.Join(repoRoot, "test", "cluster")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testcluster stats: %v", err)
	}
	return string(out)
}

// userKubeconfig returns a kubeconfig for a user with no RBAC grants.
func (c *cluster) userKubeconfig(t testing.TB, user string) string {
	t.Helper()
	cmd := exec.Command(tcBin, "kubeconfig", "--dir", c.dir, "--user", user)
	cmd.Dir = filepath.Join(repoRoot, "test", "cluster")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testcluster kubeconfig: %v", err)
	}
	return strings.TrimSpace(string(out))
}
