package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cluster "github.com/devmtls/devmtls/test/cluster"
)

// testcluster runs the CLI the way the main module's tests will:
// `go run ./cmd/testcluster ARGS` from this module's directory, capturing
// stdout through a pipe. WaitDelay turns a pipe held open by a leaked child
// (a component that inherited stdout) into an error instead of a hang.
func testcluster(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/testcluster"}, args...)...)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.WaitDelay = 30 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("testcluster %s: a child process kept its output pipe open", strings.Join(args, " "))
	}
	return out.String(), errOut.String(), err
}

// TestCLI drives `testcluster up/status/kubeconfig/stats/down` as the main
// module's forward tests and `make cluster-up` will.
func TestCLI(t *testing.T) {
	binaries(t)
	dir := filepath.Join(t.TempDir(), "cluster")
	t.Cleanup(func() {
		if err := cluster.StopDir(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	stdout, stderr, err := testcluster(t, "up", "--dir", dir, "--websocket-tunnel")
	if err != nil {
		t.Fatalf("testcluster up: %v\n%s", err, stderr)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if want := "export KUBECONFIG=" + kubeconfig + "\n"; stdout != want {
		t.Errorf("up printed %q, want %q", stdout, want)
	}
	// `up` has exited; the cluster must still be there.
	if out := kubectl(t, kubeconfig, "get", "node", cluster.DefaultNodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.declaredFeatures}`); out != `True ["ExtendWebSocketsToKubelet"]` {
		t.Errorf("node after up: %q", out)
	}

	again, stderr, err := testcluster(t, "up", "--dir", dir, "--websocket-tunnel")
	if err != nil || again != stdout || !strings.Contains(stderr, "already running") {
		t.Errorf("second up: err=%v stdout=%q stderr=%q: want the same export line and 'already running'", err, again, stderr)
	}
	if _, stderr, err := testcluster(t, "up", "--dir", dir); err == nil {
		t.Errorf("up without --websocket-tunnel over a tunnel cluster succeeded: %s", stderr)
	}
	if out, stderr, err := testcluster(t, "status", "--dir", dir); err != nil || !strings.Contains(out, "kube-apiserver") {
		t.Errorf("status: err=%v\n%s%s", err, out, stderr)
	}

	userCfg, stderr, err := testcluster(t, "kubeconfig", "--dir", dir, "--user", "bob")
	if err != nil {
		t.Fatalf("kubeconfig --user bob: %v\n%s", err, stderr)
	}
	if out, err := kubectlErr(strings.TrimSpace(userCfg), "", "get", "pods"); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("kubectl as bob: err=%v %q, want forbidden", err, out)
	}

	statsOut, stderr, err := testcluster(t, "stats", "--dir", dir)
	var stats cluster.PortForwardStats
	if err != nil || json.Unmarshal([]byte(statsOut), &stats) != nil {
		t.Errorf("stats: err=%v %q %s", err, statsOut, stderr)
	}

	pidsFile, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, line := range strings.Split(strings.TrimSpace(string(pidsFile)), "\n") {
		pid, err := strconv.Atoi(strings.Fields(line)[0])
		if err != nil {
			t.Fatalf("pids file: %q", pidsFile)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 5 {
		t.Errorf("pids file lists %d processes, want 5:\n%s", len(pids), pidsFile)
	}

	if _, stderr, err := testcluster(t, "down", "--dir", dir); err != nil {
		t.Fatalf("down: %v\n%s", err, stderr)
	}
	for _, pid := range pids {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !bytes.Contains(b, []byte(") Z")) {
			t.Errorf("pid %d still running after down: %s", pid, b)
		}
	}
	if len(processesWith(dir)) > 0 {
		t.Errorf("processes of the cluster in %s still running after down: %v", dir, processesWith(dir))
	}
	if _, stderr, err := testcluster(t, "down", "--dir", dir); err != nil {
		t.Errorf("second down: %v\n%s", err, stderr)
	}
}
