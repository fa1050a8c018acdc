package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

// fileForward is a running `devmtls forward -f FILE`.
type fileForward struct {
	cmd    *exec.Cmd
	vars   map[string]string // NAME_ADDR lines from stdout
	stderr *syncBuffer
	done   chan error
}

// startFileForward runs cmd and waits for want NAME_ADDR=HOST:PORT lines on
// its stdout. It is interrupted like Ctrl-C when the test ends.
func startFileForward(t *testing.T, cmd *exec.Cmd, want int) *fileForward {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &fileForward{cmd: cmd, vars: map[string]string{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
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
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-f.done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Errorf("devmtls forward -f did not exit within 30s of SIGINT:\n%s", f.stderr)
			}
		}
	})
	timeout := time.After(3 * time.Minute)
	for len(f.vars) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("devmtls forward -f exited before listening: %v\n%s", <-f.done, f.stderr)
			}
			name, value, found := strings.Cut(line, "=")
			if !found || !strings.HasSuffix(name, "_ADDR") {
				t.Fatalf("stdout line %q is not NAME_ADDR=HOST:PORT\n%s", line, f.stderr)
			}
			f.vars[name] = value
		case <-timeout:
			t.Fatalf("devmtls forward -f did not print its addresses:\n%s", f.stderr)
		}
	}
	go func() {
		for line := range lines {
			t.Errorf("unexpected stdout line after the addresses: %q", line)
		}
	}()
	return f
}

// TestForwardFileTwoNamespaces serves a forwards file whose two entries live
// in two namespaces, each with its own cluster keypair, from one process: the
// first from its namespace's Secret, the second from files (creds:, relative
// to the forwards file) in a namespace that has no Secret at all.
func TestForwardFileTwoNamespaces(t *testing.T) {
	c := testCluster(t, false)
	dev := keypair(t, certs.Request{})
	nsA, nsB := c.namespace(t), c.namespace(t)
	c.clusterSecret(t, nsA, "mtls", keypair(t, certs.Request{CommonName: "tester-a"}))
	c.deployMTLS(t, nsA, "orders", 1, "http")
	kpB := keypair(t, certs.Request{CommonName: "tester-b"})
	c.deployMTLSInto(t, nsB, "payments", kpB)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "b-creds"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "b-creds", "cert"), string(kpB.Top.CertPEM))
	writeTestFile(t, filepath.Join(dir, "b-creds", "key"), string(kpB.Top.KeyPEM))
	file := filepath.Join(dir, "forwards.yaml")
	writeTestFile(t, file, fmt.Sprintf(`forwards:
  - {target: svc/orders, namespace: %s, ports: ["443"]}
  - {target: svc/payments, namespace: %s, as: pay, creds: ./b-creds, ports: ["8443:https"]}
`, nsA, nsB))
	cmd := exec.Command(devmtlsBin, "--dir", dev.Dir, "forward", "--kubeconfig", c.kubeconfig, "-f", "forwards.yaml")
	cmd.Dir = dir
	f := startFileForward(t, cmd, 2)
	client := dev.ClientConfig(dev.Top, "localhost")
	for name, want := range map[string]string{"ORDERS_ADDR": "to tester-a", "PAY_ADDR": "to tester-b"} {
		body, err := httpsGet(f.vars[name], client)
		if err != nil || !strings.Contains(body, want) {
			t.Errorf("%s=%s: %q, %v (want %q)\n%s", name, f.vars[name], body, err, want, f.stderr)
		}
	}
	table := f.stderr.String()
	for _, want := range []string{"NAME", "orders", "svc/orders", nsA, "pay", "svc/payments", nsB, "ORDERS_ADDR", "PAY_ADDR"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table on stderr lacks %q:\n%s", want, table)
		}
	}
}

// TestForwardFileCompose serves a compose file's x-devmtls.forwards without
// Docker, at the addresses devmtls env gives host processes.
func TestForwardFileCompose(t *testing.T) {
	c := testCluster(t, false)
	ns := c.namespace(t)
	c.clusterSecret(t, ns, "mtls", keypair(t, certs.Request{CommonName: "tester"}))
	c.deployMTLS(t, ns, "orders", 1, "http")
	project := t.TempDir()
	compose := filepath.Join(project, "compose.yaml")
	writeTestFile(t, compose, fmt.Sprintf(`services:
  api: {image: scratch}
x-devmtls:
  forwards:
    - {target: svc/orders, namespace: %s, ports: ["443"]}
`, ns))
	// devmtls env makes the environment's credentials and names the address.
	env := exec.Command(devmtlsBin, "env", "--format", "dotenv")
	env.Dir = project
	out, err := env.CombinedOutput()
	if err != nil {
		t.Fatalf("devmtls env: %v\n%s", err, out)
	}
	want := ""
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "ORDERS_ADDR="); ok {
			want = strings.Trim(v, `"'`)
		}
	}
	if want == "" {
		t.Fatalf("devmtls env printed no ORDERS_ADDR:\n%s", out)
	}
	cmd := exec.Command(devmtlsBin, "forward", "--kubeconfig", c.kubeconfig, "-f", compose)
	cmd.Dir = t.TempDir() // the project is found from the file, not the working directory
	cmd.Env = append(os.Environ(), "DEVMTLS_LOG_FORMAT=json")
	f := startFileForward(t, cmd, 1)
	if f.vars["ORDERS_ADDR"] != want {
		t.Errorf("forward -f compose.yaml says ORDERS_ADDR=%s, devmtls env says %s", f.vars["ORDERS_ADDR"], want)
	}
	creds, err := (&certs.Store{Dir: filepath.Join(project, ".devmtls")}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body, err := httpsGet(want, creds.ClientConfig(creds.Top, "localhost"))
	if err != nil || !strings.HasPrefix(body, "hello from orders-") {
		t.Fatalf("through %s: %q, %v\n%s", want, body, err, f.stderr)
	}
	// DEVMTLS_LOG_FORMAT=json: stderr is JSON events, one per line.
	kinds := map[string]bool{}
	deadline := time.Now().Add(time.Minute)
	for !kinds["closed"] && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		kinds = map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(f.stderr.String()), "\n") {
			var ev struct{ Kind, Target string }
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("stderr line %q is not JSON: %v", line, err)
			}
			kinds[ev.Kind] = true
		}
	}
	if !kinds["listening"] || !kinds["opened"] || !kinds["closed"] {
		t.Errorf("events seen: %v\n%s", kinds, f.stderr)
	}
}

// complete runs cobra's completion entry point as a shell does and returns
// the candidates (stdout without the directive line) and the directive.
func complete(t *testing.T, env []string, args ...string) ([]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, devmtlsBin, append([]string{"__complete"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("devmtls __complete %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestForwardCompletion(t *testing.T) {
	c := testCluster(t, false)
	ns := c.namespace(t)
	c.clusterSecret(t, ns, "mtls", keypair(t, certs.Request{CommonName: "tester"}))
	c.deployMTLS(t, ns, "orders", 1, "http")
	kc := []string{"KUBECONFIG=" + c.kubeconfig}

	got, directive := complete(t, kc, "forward", "")
	if strings.Join(got, " ") != "deploy/ pod/ rs/ sts/ svc/" || directive != ":6" {
		t.Errorf("forward '': %q %s", got, directive)
	}
	got, _ = complete(t, kc, "forward", "-n", ns, "svc/")
	if strings.Join(got, " ") != "svc/orders" {
		t.Errorf("forward -n NS svc/: %q", got)
	}
	got, _ = complete(t, kc, "forward", "-n", ns, "deploy/o")
	if strings.Join(got, " ") != "deploy/orders" {
		t.Errorf("forward -n NS deploy/o: %q", got)
	}
	got, directive = complete(t, kc, "forward", "-n", ns, "svc/orders", "")
	if strings.Join(got, "|") != "443\tservice port https|:https\tservice port https" || directive != ":4" {
		t.Errorf("forward svc/orders '': %q %s", got, directive)
	}
	got, _ = complete(t, kc, "forward", "-n", ns, "deploy/orders", "")
	if strings.Join(got, "|") != "8443\tcontainer port https|:https\tcontainer port https" {
		t.Errorf("forward deploy/orders '': %q", got)
	}
	got, _ = complete(t, kc, "forward", "-n", "")
	if !slices.Contains(got, ns) || !slices.Contains(got, "kube-system") {
		t.Errorf("forward -n '': %q lacks %s", got, ns)
	}
	got, _ = complete(t, kc, "forward", "--context", "")
	if len(got) == 0 {
		t.Errorf("forward --context '': no contexts from %s", c.kubeconfig)
	}
	for _, name := range got {
		if _, err := c.kubectlErr("config", "get-contexts", name); err != nil {
			t.Errorf("--context candidate %q is not a context of the kubeconfig", name)
		}
	}

	// A cluster that accepts connections and never answers: the shell gets
	// an error directive and no candidates, instead of waiting.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	got, directive = complete(t, kc, "forward", "--server", "https://"+ln.Addr().String(), "-n", ns, "svc/")
	if len(got) != 0 || directive != ":1" {
		t.Errorf("against a silent server: %q %s", got, directive)
	}
}

// TestForwardKubectlFlags: kubectl's connection flags take effect, as in
// kubectl: --as impersonates under RBAC; --server, --token and
// --certificate-authority reach a cluster without any kubeconfig;
// --insecure-skip-tls-verify; --request-timeout ends a request to a server
// that never answers; -v shows the API requests.
func TestForwardKubectlFlags(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "orders", 1, "http")
	fwd := func(env []string, args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, devmtlsBin, append([]string{"--dir", s.dev.Dir, "forward", "-n", s.ns, "--pod-running-timeout", "20s"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	serve := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(devmtlsBin, append([]string{"--dir", s.dev.Dir, "forward", "-n", s.ns}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		f := runForward(t, cmd, 2)
		body, err := httpsGet(f.ipv4(t, 0), s.devClient())
		if err != nil || !strings.Contains(body, "to tester") {
			t.Errorf("forward %v: %q, %v\n%s", args, body, err, f.stderr)
		}
		f.stop(t)
	}

	t.Run("as", func(t *testing.T) {
		out, code := fwd(nil, "--kubeconfig", s.c.kubeconfig, "--as", "jane", "svc/orders", ":443")
		if code == 0 || !strings.Contains(out, `"jane"`) || !strings.Contains(out, "forbidden") {
			t.Fatalf("--as jane without RBAC: exit %d\n%s", code, out)
		}
		s.c.kubectl(t, "-n", s.ns, "create", "rolebinding", "jane-admin", "--clusterrole=admin", "--user=jane")
		serve(nil, "--kubeconfig", s.c.kubeconfig, "--as", "jane", "svc/orders", ":443")
	})

	server := strings.TrimSpace(s.c.kubectl(t, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"))
	caData := strings.TrimSpace(s.c.kubectl(t, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}"))
	ca, err := base64.StdEncoding.DecodeString(caData)
	if err != nil || len(ca) == 0 {
		t.Fatalf("the test kubeconfig's CA: %v", err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	writeTestFile(t, caFile, string(ca))
	s.c.kubectl(t, "-n", s.ns, "create", "serviceaccount", "dev")
	token := strings.TrimSpace(s.c.kubectl(t, "-n", s.ns, "create", "token", "dev"))
	noKubeconfig := []string{"KUBECONFIG=" + filepath.Join(t.TempDir(), "none")}

	t.Run("server-token-ca", func(t *testing.T) {
		out, code := fwd(noKubeconfig, "--server", server, "--token", token, "--certificate-authority", caFile, "svc/orders", ":443")
		if code == 0 || !strings.Contains(out, "system:serviceaccount:"+s.ns+":dev") {
			t.Fatalf("--token of a service account without RBAC: exit %d\n%s", code, out)
		}
		s.c.kubectl(t, "-n", s.ns, "create", "rolebinding", "dev-admin", "--clusterrole=admin", "--serviceaccount="+s.ns+":dev")
		serve(noKubeconfig, "--server", server, "--token", token, "--certificate-authority", caFile, "svc/orders", ":443")
	})

	t.Run("insecure-skip-tls-verify", func(t *testing.T) {
		out, code := fwd(noKubeconfig, "--server", server, "--token", token, "svc/orders", ":443")
		if code == 0 || !strings.Contains(out, "certificate") {
			t.Fatalf("--server without its CA: exit %d\n%s", code, out)
		}
		serve(noKubeconfig, "--server", server, "--token", token, "--insecure-skip-tls-verify", "svc/orders", ":443")
	})

	t.Run("request-timeout", func(t *testing.T) {
		// Accepts connections and never answers, not even the TLS handshake.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
			}
		}()
		out, code := fwd(noKubeconfig, "--server", "https://"+ln.Addr().String(), "--insecure-skip-tls-verify", "--token", "x",
			"--request-timeout", "1s", "svc/orders", ":443")
		if code == 0 || !strings.Contains(strings.ToLower(out), "timeout") {
			t.Fatalf("--request-timeout 1s against a silent server: exit %d\n%s", code, out)
		}
	})

	t.Run("v", func(t *testing.T) {
		cmd := exec.Command(devmtlsBin, "--dir", s.dev.Dir, "forward", "--kubeconfig", s.c.kubeconfig, "-n", s.ns, "-v", "6", "svc/orders", ":443")
		f := runForward(t, cmd, 2)
		if want := "/api/v1/namespaces/" + s.ns + "/services/orders"; !strings.Contains(f.stderr.String(), want) {
			t.Errorf("-v 6 logged no request for %s:\n%s", want, f.stderr)
		}
	})
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
