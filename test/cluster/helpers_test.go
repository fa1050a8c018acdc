package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cluster "github.com/devmtls/devmtls/test/cluster"
)

// need stops a test whose prerequisite is missing: under CI=true that is a
// failure (CI must run everything), elsewhere a skip that says what to
// install.
func need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("skipping: %s: %v", what, err)
}

// binaries returns the cached cluster binaries, building them on first use.
// A cold build takes many minutes; under go test's default 10-minute
// timeout it would end in a timeout panic, so that case stops early with
// instructions instead.
func binaries(t testing.TB) *cluster.Binaries {
	t.Helper()
	_, err := exec.LookPath("kubectl")
	need(t, "kubectl not on PATH (install kubectl)", err)
	if tt, ok := t.(*testing.T); ok {
		cache, err := cluster.DefaultCacheDir()
		need(t, "cache directory", err)
		_, statErr := os.Stat(filepath.Join(cache, "k8s-"+cluster.KubernetesVersion, "kube-apiserver"))
		if deadline, ok := tt.Deadline(); ok && statErr != nil && time.Until(deadline) < 30*time.Minute {
			need(t, "Kubernetes binaries not built yet, and building them takes longer than this test's timeout",
				errors.New("run `make build` (or `go run ./cmd/testcluster build`) first, or go test -timeout 60m"))
		}
	}
	b, err := cluster.EnsureBinaries(context.Background(), cluster.BuildOptions{Logf: t.Logf})
	need(t, "cluster binaries (etcd, or building Kubernetes)", err)
	return b
}

// startCluster starts a cluster for the test and stops it at the end. If the
// test failed, the end of every component log goes to the test output, so
// a CI failure can be diagnosed from the log alone.
func startCluster(t testing.TB, tunnel bool) (*cluster.Cluster, time.Time) {
	t.Helper()
	bins := binaries(t)
	dir := t.TempDir()
	start := time.Now()
	c, err := cluster.Start(context.Background(), cluster.Options{
		Dir:                    dir,
		DeclareWebSocketTunnel: tunnel,
		Binaries:               bins,
		Logf:                   t.Logf,
	})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- end of %s:\n%s", l, b)
			}
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c, start
}

// buildEcho builds the echo server into a directory any user can read, so
// pods running as another uid can execute it.
func buildEcho(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "echoserver")
	cmd := exec.Command("go", "build", "-o", bin, cluster.ModulePath+"/internal/echoserver")
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build echo server: %v\n%s", err, out)
	}
	return bin
}

// kubectl runs the installed kubectl against the cluster and fails the test
// if it fails.
func kubectl(t testing.TB, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := kubectlErr(kubeconfig, "", args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func kubectlErr(kubeconfig, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func apply(t testing.TB, kubeconfig, manifest string) {
	t.Helper()
	if out, err := kubectlErr(kubeconfig, manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// portForward runs `kubectl port-forward TARGET :REMOTE` and returns the
// local address once kubectl reports it is listening. env adds to kubectl's
// environment (e.g. KUBECTL_PORT_FORWARD_WEBSOCKETS=false).
func portForward(t testing.TB, kubeconfig, target string, remotePort int, env ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", "--kubeconfig", kubeconfig, "port-forward", "--address", "127.0.0.1", target, ":"+strconv.Itoa(remotePort))
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) ->`)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if m := re.FindStringSubmatch(s.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("kubectl port-forward %s exited: %s", target, stderr.String())
		}
		return a
	case <-time.After(2 * time.Minute):
		t.Fatalf("kubectl port-forward %s did not start listening: %s", target, stderr.String())
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echoTransfer sends n bytes to an echo server at addr while reading the
// echo back concurrently, then half-closes and reads to EOF. With verify,
// the data is a pseudo-random stream and the SHA-256 of what came back must
// equal that of what was sent; without it (benchmarks) a fixed buffer is
// sent so hashing does not cap raw loopback speed, and only the byte count
// is checked. It returns the time from connect to the last byte.
func echoTransfer(addr string, n int64, verify bool) (time.Duration, error) {
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	sent, got := sha256.New(), sha256.New()
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var rng *rand.ChaCha8
		if verify {
			var seed [32]byte
			copy(seed[:], strconv.FormatInt(time.Now().UnixNano(), 10))
			rng = rand.NewChaCha8(seed)
		} else {
			for i := range buf {
				buf[i] = byte(i * 7)
			}
		}
		for left := n; left > 0; {
			chunk := buf[:min(int64(len(buf)), left)]
			if verify {
				_, _ = rng.Read(chunk)
				sent.Write(chunk)
			}
			if _, err := conn.Write(chunk); err != nil {
				writeErr <- err
				return
			}
			left -= int64(len(chunk))
		}
		writeErr <- conn.(*net.TCPConn).CloseWrite()
	}()
	var dst io.Writer = io.Discard
	if verify {
		dst = got
	}
	received, err := io.Copy(dst, conn)
	if err != nil {
		return 0, fmt.Errorf("read echo after %d bytes: %w", received, err)
	}
	elapsed := time.Since(start)
	if err := <-writeErr; err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	if received != n {
		return 0, fmt.Errorf("echoed %d bytes, sent %d", received, n)
	}
	if verify && !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		return 0, errors.New("echoed data differs from sent data (sha256 mismatch)")
	}
	return elapsed, nil
}

// echoManifest is the workload of the end-to-end tests: a Secret and a
// ConfigMap feeding env vars (as the forward tests feed PEM credentials),
// a Deployment of echo servers running as an unprivileged user on
// $(POD_IP):8080 with a TCP readiness probe on the named port, and a
// Service whose targetPort is that name.
func echoManifest(echoBin string, replicas int) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: echo-creds}
stringData:
  cert: |
    -----BEGIN CERTIFICATE-----
    dGVzdA==
    -----END CERTIFICATE-----
---
apiVersion: v1
kind: ConfigMap
metadata: {name: echo-config}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: %d
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 5
      securityContext: {runAsUser: 65534, runAsGroup: 65534}
      containers:
      - name: echo
        image: ignored.example/echo
        command: [%q]
        args: ["-listen", "$(POD_IP):8080", "-print-env", "CERT", "-print-env", "GREETING", "-print-env", "MSG", "-print-env", "POD_NAMESPACE"]
        workingDir: /tmp
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: CERT, valueFrom: {secretKeyRef: {name: echo-creds, key: cert}}}
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: echo-config, key: greeting}}}
        - {name: MSG, value: "$(GREETING) from $(POD_NAME)"}
        ports: [{name: echo, containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: echo}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: echo}]
`, replicas, echoBin)
}
