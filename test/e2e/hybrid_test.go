package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/testenv"
)

// hybridShop is the example shop run with examples/shop/compose.hybrid.yaml:
// everything in Compose except pricing, which lives in the test cluster.
type hybridShop struct {
	c       *cluster
	ns      string
	dir     string   // a copy of examples/shop
	env     []string // what every devmtls command gets
	project string
	cluster *certs.Credentials
	// pricingPort is where containers call pricing (PRICING_PORT), chosen
	// at run time so that hybrid shops can run side by side.
	pricingPort string
}

var (
	imagesOnce sync.Once
	imagesErr  error
	shopImage  string
	haproxyImg string
	shopsvcBin string
)

// exampleImages builds the example's images (and a host build of shopsvc for
// the cluster's pods) once per run; TestMain's teardown removes them.
func exampleImages(t testing.TB) {
	t.Helper()
	testenv.LookPath(t, "docker", "install Docker Engine (apt-get install docker.io) and start dockerd")
	testenv.LookPath(t, "haproxy", "apt-get install haproxy")
	imagesOnce.Do(func() {
		if err := exec.Command("docker", "info").Run(); err != nil {
			imagesErr = fmt.Errorf("the Docker daemon does not answer: %v", err)
			return
		}
		b := make([]byte, 4)
		rand.Read(b)
		tag := hex.EncodeToString(b)
		shopImage, haproxyImg = "devmtls-e2e/shopsvc:"+tag, "devmtls-e2e/haproxy:"+tag
		cmd := exec.Command(filepath.Join(repoRoot, "examples", "build-images.sh"))
		cmd.Env = append(os.Environ(), "SHOP_IMAGE="+shopImage, "SHOP_HAPROXY_IMAGE="+haproxyImg)
		if out, err := cmd.CombinedOutput(); err != nil {
			imagesErr = fmt.Errorf("examples/build-images.sh: %v\n%s", err, out)
			return
		}
		cleanups = append(cleanups, func() { exec.Command("docker", "rmi", "--force", shopImage, haproxyImg).Run() })
		shopsvcBin = filepath.Join(workDir, "bin", "shopsvc")
		build := exec.Command("go", "build", "-o", shopsvcBin, "./examples/shop/shopsvc")
		build.Dir = repoRoot
		if out, err := build.CombinedOutput(); err != nil {
			imagesErr = fmt.Errorf("build shopsvc: %v\n%s", err, out)
		}
	})
	if imagesErr != nil {
		if testenv.InCI() {
			t.Fatal(imagesErr)
		}
		t.Skipf("skipping: %v", imagesErr)
	}
}

func freeLocalPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// newHybridShop prepares the hybrid shop run with one Compose line.
func newHybridShop(t *testing.T, kubeconfig string, line testenv.ComposeLine) *hybridShop {
	t.Helper()
	exampleImages(t)
	c := testCluster(t, false)
	h := &hybridShop{c: c, ns: c.namespace(t), dir: t.TempDir(), cluster: keypair(t, certs.Request{CommonName: "shop-cluster"})}
	c.clusterSecret(t, h.ns, "mtls", h.cluster)
	manifest, err := os.ReadFile(filepath.Join(repoRoot, "examples", "cluster", "pricing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c.apply(t, h.ns, strings.ReplaceAll(string(manifest), "SHOPSVC", shopsvcBin))
	c.kubectl(t, "-n", h.ns, "rollout", "status", "deploy/pricing", "--timeout=3m")

	for _, f := range []string{"compose.yaml", "compose.hybrid.yaml", "haproxy/haproxy.cfg"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, "examples", "shop", f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(h.dir, f)), 0o755)
		os.WriteFile(filepath.Join(h.dir, f), data, 0o644)
	}
	b := make([]byte, 3)
	rand.Read(b)
	h.project = "devmtls-e2e-hybrid-" + line.Name + "-" + hex.EncodeToString(b)
	h.pricingPort = freeLocalPort(t)
	if kubeconfig == "" {
		kubeconfig = c.kubeconfig
	}
	h.env = append(os.Environ(),
		"COMPOSE_FILE=compose.yaml:compose.hybrid.yaml", "COMPOSE_PROJECT_NAME="+h.project, "KUBECONFIG="+kubeconfig,
		"PRICING_NAMESPACE="+h.ns, "PRICING_PORT="+h.pricingPort, "SHOP_IMAGE="+shopImage, "SHOP_HAPROXY_IMAGE="+haproxyImg,
		"SHOP_GATEWAY_PORT="+freeLocalPort(t), "SHOP_ORDERS_PORT="+freeLocalPort(t), "SHOP_DOCS_PORT="+freeLocalPort(t),
		"DEVMTLS_DIR=", "CI=", line.Env())
	t.Cleanup(func() {
		h.run(t, "down", "--remove-orphans", "-t", "1")
		down := line.Args("-p", h.project, "down", "--remove-orphans")
		exec.Command(down[0], down[1:]...).Run()
	})
	return h
}

// run runs devmtls in the project directory and returns its output and exit code.
func (h *hybridShop) run(t testing.TB, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, devmtlsBin, args...)
	cmd.Dir, cmd.Env = h.dir, h.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("devmtls %v: %v", args, err)
	}
	return string(out), code
}

func (h *hybridShop) mustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, code := h.run(t, args...)
	if code != 0 {
		t.Fatalf("devmtls %v: exit %d\n%s", args, code, out)
	}
	return out
}

// callPricingFromOrders runs shopsvc's mTLS client inside the orders
// container against pricing's path, by the name containers use.
func (h *hybridShop) callPricingFromOrders(t testing.TB, path string) (string, error) {
	t.Helper()
	id := strings.TrimSpace(h.mustRun(t, "compose", "ps", "-q", "orders"))
	out, err := exec.Command("docker", "exec", id, "/shopsvc", "call", "https://pricing:"+h.pricingPort+path).CombinedOutput()
	return string(out), err
}

func (h *hybridShop) status(t testing.TB) statusDoc {
	t.Helper()
	var s statusDoc
	out := h.mustRun(t, "status", "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return s
}

type statusDoc struct {
	Forwards *struct {
		PID      int `json:"pid"`
		Forwards []struct {
			As         string   `json:"as"`
			Pod        string   `json:"pod"`
			Containers []string `json:"containers"`
			Host       []string `json:"host"`
			Total      int64    `json:"total_connections"`
			LastError  string   `json:"last_error"`
		} `json:"forwards"`
	} `json:"forwards"`
}

// TestHybridComposeReachesClusterService is the hybrid flow end to end: a
// Compose service calls pricing, which exists only in the test cluster, by its
// cluster name over mTLS; a host process does the same through devmtls exec;
// the flow survives the pricing pod being replaced; down leaves nothing.
func TestHybridComposeReachesClusterService(t *testing.T) {
	testenv.ForEachCompose(t, testHybridComposeReachesClusterService)
}

func testHybridComposeReachesClusterService(t *testing.T, line testenv.ComposeLine) {
	h := newHybridShop(t, "", line)
	out := h.mustRun(t, "up", "-d")
	if !strings.Contains(out, "forwarding pricing -> svc/pricing in namespace "+h.ns+" for containers at pricing:"+h.pricingPort) {
		t.Fatalf("devmtls up -d did not report the forward:\n%s", out)
	}
	st := h.status(t)
	if st.Forwards == nil || len(st.Forwards.Forwards) != 1 {
		t.Fatalf("status reports no forwards: %+v", st)
	}
	pid := st.Forwards.PID

	// A container calls the cluster service by its cluster name.
	body, err := h.callPricingFromOrders(t, "/price?sku=mug")
	if err != nil || !strings.Contains(body, `"price_cents": 1250`) || !strings.Contains(body, `"client": "shop-cluster"`) {
		t.Fatalf("orders -> pricing: %v\n%s", err, body)
	}
	firstPod := h.c.pods(t, h.ns, "pricing")[0]
	if !strings.Contains(body, firstPod) {
		t.Fatalf("answered by %s? %s", firstPod, body)
	}
	// And the orders API uses it for its own work, reached from the host.
	ordersPort := envValue(h.env, "SHOP_ORDERS_PORT")
	creds := h.devCreds(t)
	quote, err := httpsGetPath("127.0.0.1:"+ordersPort, "/quote?sku=tee", creds.ClientConfig(creds.Top, "localhost"))
	if err != nil || !strings.Contains(quote, `"price_cents": 1900`) {
		t.Fatalf("host -> orders -> pricing: %v\n%s", err, quote)
	}

	// A host process, through devmtls exec, reaches it by PRICING_ADDR.
	out = h.mustRun(t, "exec", "--", "sh", "-c",
		`curl -sS --fail --max-time 60 --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://$PRICING_ADDR/price?sku=cap"`)
	if !strings.Contains(out, `"price_cents": 1500`) {
		t.Fatalf("devmtls exec -> pricing:\n%s", out)
	}
	env := h.mustRun(t, "env", "--format", "json")
	if !strings.Contains(env, `"PRICING_ADDR": "127.0.0.1:`) {
		t.Fatalf("devmtls env lacks PRICING_ADDR:\n%s", env)
	}

	// The pricing pod is replaced; nothing local restarts.
	h.c.kubectl(t, "-n", h.ns, "delete", "pod", firstPod, "--wait=false")
	h.c.kubectl(t, "-n", h.ns, "rollout", "status", "deploy/pricing", "--timeout=3m")
	body, err = h.callPricingFromOrders(t, "/price?sku=mug")
	if err != nil || !strings.Contains(body, `"price_cents": 1250`) || strings.Contains(body, firstPod) {
		t.Fatalf("after the pod was replaced: %v\n%s", err, body)
	}
	if st := h.status(t); st.Forwards == nil || st.Forwards.PID != pid || st.Forwards.Forwards[0].Total < 2 {
		t.Fatalf("the forwards process changed or counted nothing: %+v", st.Forwards)
	}

	// A second up -d reuses the running forwards.
	out = h.mustRun(t, "up", "-d")
	if !strings.Contains(out, "reusing the running forwards") {
		t.Fatalf("second up -d:\n%s", out)
	}
	if st := h.status(t); st.Forwards == nil || st.Forwards.PID != pid {
		t.Fatalf("second up -d started another forwards process: %+v (was %d)", st.Forwards, pid)
	}

	// down leaves no process, container or network behind.
	h.mustRun(t, "down")
	if processRunning(pid) {
		t.Fatalf("forwards process %d still runs after down", pid)
	}
	for _, what := range [][]string{{"ps", "-aq", "--filter", "label=com.docker.compose.project=" + h.project},
		{"network", "ls", "-q", "--filter", "label=com.docker.compose.project=" + h.project}} {
		out, err := exec.Command("docker", what...).Output()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Fatalf("docker %v after down: %q %v", what, out, err)
		}
	}
}

// TestHybridClusterUnreachableAtUp: compose starts anyway, the forward says
// why it cannot serve and keeps retrying, and serves once the cluster answers.
func TestHybridClusterUnreachableAtUp(t *testing.T) {
	testenv.ForEachCompose(t, testHybridClusterUnreachableAtUp)
}

func testHybridClusterUnreachableAtUp(t *testing.T, line testenv.ComposeLine) {
	c := testCluster(t, false)
	// A kubeconfig whose server is a port nothing listens on yet; later a
	// plain TCP relay on that port leads to the real API server.
	relay, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relayAddr := relay.Addr().String()
	relay.Close()
	kc, err := os.ReadFile(c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	server := kubeServer(t, string(kc))
	path := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(kc), server, "https://"+relayAddr)), 0o600)

	h := newHybridShop(t, path, line)
	out := h.mustRun(t, "up", "-d")
	if !strings.Contains(out, "warning: forward pricing:") || !strings.Contains(out, "keeps retrying") {
		t.Fatalf("up -d with the cluster unreachable must warn and go on:\n%s", out)
	}
	if st := h.status(t); st.Forwards == nil || st.Forwards.Forwards[0].LastError == "" {
		t.Fatalf("status must show the forward's error: %+v", st.Forwards)
	}
	if body, err := h.callPricingFromOrders(t, "/price?sku=mug"); err == nil {
		t.Fatalf("a call succeeded with the cluster unreachable: %s", body)
	}

	// The cluster comes back (through the relay).
	ln, err := net.Listen("tcp", relayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go tcpRelay(ln, strings.TrimPrefix(server, "https://"))
	deadline := time.Now().Add(3 * time.Minute) // backoff tops out at 30s
	for {
		body, err := h.callPricingFromOrders(t, "/price?sku=mug")
		if err == nil && strings.Contains(body, `"price_cents": 1250`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forward never recovered: %v %s\n%+v", err, body, h.status(t).Forwards)
		}
		time.Sleep(2 * time.Second)
	}
}

// TestHybridPortInUse: a port the forward needs is taken; up says which and
// how to fix it, before compose starts anything.
func TestHybridPortInUse(t *testing.T) {
	testenv.ForEachCompose(t, testHybridPortInUse)
}

func testHybridPortInUse(t *testing.T, line testenv.ComposeLine) {
	h := newHybridShop(t, "", line)
	// Something else holds a port the forward needs, chosen now.
	ln, err := net.Listen("tcp", net.JoinHostPort(bridgeGateway(t), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	os.WriteFile(filepath.Join(h.dir, "compose.hybrid.yaml"), []byte(`x-devmtls:
  forwards:
    - {target: svc/pricing, namespace: `+h.ns+`, ports: ["`+port+`:443"]}
services:
  orders:
    environment: {PRICING_URL: "https://pricing:`+port+`"}
`), 0o644)
	out, code := h.run(t, "up", "-d")
	if code != 1 || !strings.Contains(out, "forward pricing: a port it needs is already in use") || !strings.Contains(out, "ports:") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if ps, _ := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+h.project).Output(); len(strings.TrimSpace(string(ps))) != 0 {
		t.Fatal("compose started the services although the forward could not listen")
	}
}

func bridgeGateway(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func kubeServer(t *testing.T, kubeconfig string) string {
	t.Helper()
	for _, line := range strings.Split(kubeconfig, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "server: "); ok {
			return strings.Trim(rest, `"'`)
		}
	}
	t.Fatal("no server in the kubeconfig")
	return ""
}

func tcpRelay(ln net.Listener, to string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			defer u.Close()
			go io.Copy(u, c)
			io.Copy(c, u)
		}()
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func (h *hybridShop) devCreds(t testing.TB) *certs.Credentials {
	t.Helper()
	c, err := (&certs.Store{Dir: filepath.Join(h.dir, ".devmtls")}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// processRunning reports whether pid is a live process; a zombie waiting for
// its (re)parent to reap it has ended.
func processRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
