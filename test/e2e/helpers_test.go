package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

// namespace creates a fresh namespace, deleted when the test ends.
func (c *cluster) namespace(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	ns := "e2e-" + hex.EncodeToString(b)
	c.kubectl(t, "create", "namespace", ns)
	t.Cleanup(func() { c.kubectlErr("delete", "namespace", ns, "--wait=false") })
	return ns
}

// keypair creates credentials in a directory of their own: a test
// environment's dev keypair, or a cluster's keypair (CN names the caller).
func keypair(t testing.TB, req certs.Request) *certs.Credentials {
	t.Helper()
	res, err := (&certs.Store{Dir: filepath.Join(t.TempDir(), ".devmtls")}).Ensure(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Credentials
}

// clusterSecret stores a self-signed keypair that is its own trust anchor as
// Secret name, with the keys cert and key.
func (c *cluster) clusterSecret(t testing.TB, ns, name string, kp *certs.Credentials) {
	t.Helper()
	c.kubectl(t, "-n", ns, "create", "secret", "generic", name,
		"--from-file=cert="+kp.Top.Paths.Cert, "--from-file=key="+kp.Top.Paths.Key)
}

// deployMTLS runs podserver in a Deployment behind a Service whose port 443
// targets the container port named https, with the keypair from secret mtls.
func (c *cluster) deployMTLS(t testing.TB, ns, name string, replicas int, mode string) {
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
        args: ["--listen", "$(POD_IP):8443", "--mode", %[4]q]
        ports: [{name: https, containerPort: 8443}]
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: MTLS_CERT, valueFrom: {secretKeyRef: {name: mtls, key: cert}}}
        - {name: MTLS_KEY, valueFrom: {secretKeyRef: {name: mtls, key: key}}}
        readinessProbe: {tcpSocket: {port: 8443}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: https, port: 443, targetPort: https}]
`, name, replicas, podServer, mode))
	c.kubectl(t, "-n", ns, "rollout", "status", "deploy/"+name, "--timeout=3m")
}

// deployMTLSInto deploys podserver in ns with its keypair given directly in
// the pod spec's environment, so the namespace itself has no Secret.
func (c *cluster) deployMTLSInto(t testing.TB, ns, name string, kp *certs.Credentials) {
	t.Helper()
	c.apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[1]s, labels: {app: %[1]s}}
spec:
  containers:
  - name: app
    image: podserver
    command: [%[2]q]
    args: ["--listen", "$(POD_IP):8443"]
    ports: [{name: https, containerPort: 8443}]
    env:
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MTLS_CERT, value: %[3]q}
    - {name: MTLS_KEY, value: %[4]q}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: https, port: 443, targetPort: https}]
`, name, podServer, kp.Top.CertPEM, kp.Top.KeyPEM))
	c.kubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=3m")
}

// pods lists the names of a deployment's pods that are not terminating.
func (c *cluster) pods(t testing.TB, ns, app string) []string {
	t.Helper()
	out := c.kubectl(t, "-n", ns, "get", "pods", "-l", "app="+app, "-o",
		`go-template={{range .items}}{{if not .metadata.deletionTimestamp}}{{.metadata.name}}{{"\n"}}{{end}}{{end}}`)
	return strings.Fields(out)
}

// forward is a running `devmtls forward` process.
type forward struct {
	cmd    *exec.Cmd
	addrs  []string
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// startForward runs devmtls forward and waits for its "Forwarding from" lines
// (want of them). It is interrupted like Ctrl-C when the test ends.
func startForward(t testing.TB, c *cluster, devDir, ns string, want int, args ...string) *forward {
	t.Helper()
	return runForward(t, forwardCommand(c, devDir, ns, args...), want)
}

// forwardCommand is the devmtls forward command line startForward runs.
func forwardCommand(c *cluster, devDir, ns string, args ...string) *exec.Cmd {
	return exec.Command(devmtlsBin, append([]string{"--dir", devDir, "forward", "--kubeconfig", c.kubeconfig, "-n", ns}, args...)...)
}

// runForward starts cmd, a devmtls forward, as startForward does.
func runForward(t testing.TB, cmd *exec.Cmd, want int) *forward {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &forward{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = f.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { f.done <- cmd.Wait() }()
	t.Cleanup(func() { f.stop(t) })
	timeout := time.After(3 * time.Minute)
	for len(f.addrs) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("devmtls forward exited before listening: %v\n%s", <-f.done, f.stderr)
			}
			if rest, ok := strings.CutPrefix(line, "Forwarding from "); ok {
				f.addrs = append(f.addrs, strings.Fields(rest)[0])
			}
		case <-timeout:
			t.Fatalf("devmtls forward did not start listening:\n%s", f.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return f
}

// ipv4 returns the forward's 127.0.0.1 listener for port index i.
func (f *forward) ipv4(t testing.TB, i int) string {
	t.Helper()
	var v4 []string
	for _, a := range f.addrs {
		if strings.HasPrefix(a, "127.") {
			v4 = append(v4, a)
		}
	}
	if i >= len(v4) {
		t.Fatalf("no IPv4 listener #%d in %v", i, f.addrs)
	}
	return v4[i]
}

// stop interrupts the forward like Ctrl-C and returns how long it took to exit.
func (f *forward) stop(t testing.TB) time.Duration {
	if f.cmd.ProcessState != nil {
		return 0
	}
	start := time.Now()
	f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
		f.cmd.Process.Kill()
		t.Errorf("devmtls forward did not exit within 30s of SIGINT:\n%s", f.stderr)
	}
	return time.Since(start)
}

// httpsGet makes one request for / with cfg and returns the body.
func httpsGet(addr string, cfg *tls.Config) (string, error) { return httpsGetPath(addr, "/", cfg) }

// httpsGetPath makes one request for path with cfg and returns the body; a
// status other than 200 is an error.
func httpsGetPath(addr, path string, cfg *tls.Config) (string, error) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := client.Get("https://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", path, resp.Status)
	}
	return string(body), err
}

// echoTransfer sends size pseudo-random bytes through an echo connection and
// checks the SHA-256 of what comes back.
func echoTransfer(conn net.Conn, size int64, seed uint64) error {
	sent := sha256.New()
	got := sha256.New()
	errc := make(chan error, 1)
	go func() {
		rng := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
		buf := make([]byte, 64<<10)
		for left := size; left > 0; {
			n := int64(len(buf))
			if left < n {
				n = left
			}
			rng.Read(buf[:n])
			sent.Write(buf[:n])
			if _, err := conn.Write(buf[:n]); err != nil {
				errc <- fmt.Errorf("write: %w", err)
				return
			}
			left -= n
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		errc <- nil
	}()
	n, err := io.CopyBuffer(got, conn, make([]byte, 64<<10))
	werr := <-errc
	if werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	if n != size {
		return fmt.Errorf("echoed %d bytes, sent %d", n, size)
	}
	if hex.EncodeToString(sent.Sum(nil)) != hex.EncodeToString(got.Sum(nil)) {
		return fmt.Errorf("SHA-256 of the echo differs from what was sent")
	}
	return nil
}

// devmtls runs the binary to completion.
func devmtls(t testing.TB, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, devmtlsBin, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("devmtls %v: %v", args, err)
	}
	return string(out), code
}

// kubectlPortForward runs plain kubectl port-forward for comparison and
// returns its first IPv4 listener and its process ID.
func (c *cluster) kubectlPortForward(t testing.TB, ns string, args ...string) (string, int) {
	t.Helper()
	return c.kubectlPortForwardEnv(t, nil, ns, args...)
}

// kubectlPortForwardEnv is kubectlPortForward with env added to kubectl's
// environment (KUBECTL_PORT_FORWARD_WEBSOCKETS chooses its transport).
func (c *cluster) kubectlPortForwardEnv(t testing.TB, env []string, ns string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", c.kubeconfig, "-n", ns, "port-forward"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGINT); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Forwarding from "); ok && strings.HasPrefix(rest, "127.") {
			go io.Copy(io.Discard, stdout)
			return strings.Fields(rest)[0], cmd.Process.Pid
		}
	}
	t.Fatalf("kubectl port-forward %v did not start", args)
	return "", 0
}
