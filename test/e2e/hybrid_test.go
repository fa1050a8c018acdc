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
	"github.com/devmtls/devmtls/hybrid/relay"
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
	// user, when set, is who every devmtls command runs as.
	user *unprivileged
}

// pricingPort is where containers call pricing, as in the cluster: every
// project has networks of its own, where its relay answers to pricing:443,
// so hybrid shops run side by side on one port. The host side has no fixed
// port: devmtls chooses its own.
const pricingPort = "443"

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
		// The forwards' relay image, which the first up makes from this run's
		// devmtls.
		if relayImage, err := relay.ImageRef(devmtlsBin); err == nil {
			cleanups = append(cleanups, func() { exec.Command("docker", "rmi", "--force", relayImage).Run() })
		}
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

// newHybridShop prepares the hybrid shop run with one Compose line, by the
// test's own user or, with asUser, by an unprivileged user of the docker
// group.
func newHybridShop(t *testing.T, kubeconfig string, line testenv.ComposeLine, asUser bool) *hybridShop {
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
	if kubeconfig == "" {
		kubeconfig = c.kubeconfig
	}
	h.env = append(os.Environ(),
		"COMPOSE_FILE=compose.yaml:compose.hybrid.yaml", "COMPOSE_PROJECT_NAME="+h.project, "KUBECONFIG="+kubeconfig,
		"PRICING_NAMESPACE="+h.ns, "PRICING_PORT=", "SHOP_IMAGE="+shopImage, "SHOP_HAPROXY_IMAGE="+haproxyImg,
		"SHOP_GATEWAY_PORT="+freeLocalPort(t), "SHOP_ORDERS_PORT="+freeLocalPort(t), "SHOP_DOCS_PORT="+freeLocalPort(t),
		"DEVMTLS_DIR=", "CI=", line.Env())
	if asUser {
		h.runAsUnprivileged(t, kubeconfig)
	}
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
	cmd := h.command(ctx, devmtlsBin, args...)
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
	out, err := exec.Command("docker", "exec", id, "/shopsvc", "call", "https://pricing:"+pricingPort+path).CombinedOutput()
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
			Gateway    []string `json:"gateway"`
			Relay      *struct {
				Service   string `json:"service"`
				Container string `json:"container"`
				State     string `json:"state"`
			} `json:"relay"`
			Total     int64  `json:"total_connections"`
			LastError string `json:"last_error"`
		} `json:"forwards"`
	} `json:"forwards"`
}

// TestHybridComposeReachesClusterService is the hybrid flow end to end, run
// by the test's own user and by an unprivileged user of the docker group,
// with each Compose line: a Compose service calls pricing, which exists only
// in the test cluster, by its cluster name and port (pricing:443) over mTLS,
// through the forward's relay; a host process does the same at
// $PRICING_ADDR; devmtls holds no listening socket below 1024; an IDE run
// configuration keeps reaching pricing across down and up; the flow
// survives the pricing pod being replaced; down leaves nothing.
func TestHybridComposeReachesClusterService(t *testing.T) {
	for _, asUser := range []bool{false, true} {
		name := "invoking-user"
		if asUser {
			name = "unprivileged-user"
		}
		t.Run(name, func(t *testing.T) {
			testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
				testHybridComposeReachesClusterService(t, line, asUser)
			})
		})
	}
}

func testHybridComposeReachesClusterService(t *testing.T, line testenv.ComposeLine, asUser bool) {
	h := newHybridShop(t, "", line, asUser)
	out := h.mustRun(t, "up", "-d")
	if !strings.Contains(out, "forwarding pricing -> svc/pricing in namespace "+h.ns+" for containers at pricing:443 (relay devmtls-relay-pricing), for host processes at 127.0.0.1:") {
		t.Fatalf("devmtls up -d did not report the forward:\n%s", out)
	}
	st := h.status(t)
	if st.Forwards == nil || len(st.Forwards.Forwards) != 1 {
		t.Fatalf("status reports no forwards: %+v", st)
	}
	pid := st.Forwards.PID
	f := st.Forwards.Forwards[0]
	if f.Relay == nil || f.Relay.State != "running" || f.Relay.Service != "devmtls-relay-pricing" ||
		len(f.Containers) != 1 || f.Containers[0] != "pricing:443" || len(f.Host) != 1 || len(f.Gateway) != 1 {
		t.Fatalf("status of the forward: %+v (relay %+v)", f, f.Relay)
	}
	pricingAddr := f.Host[0]
	h.checkListeners(t, pid, f.Host[0], f.Gateway[0])

	// A container calls the cluster service by its cluster name and port.
	body, err := h.callPricingFromOrders(t, "/price?sku=mug")
	if err != nil || !strings.Contains(body, `"price_cents": 1250`) || !strings.Contains(body, `"client": "shop-cluster"`) {
		t.Fatalf("orders -> pricing: %v\n%s", err, body)
	}
	firstPod := h.c.pods(t, h.ns, "pricing")[0]
	if !strings.Contains(body, firstPod) {
		t.Fatalf("answered by %s? %s", firstPod, body)
	}
	// And the orders API uses it for its own work, reached from the host.
	quote := h.mustRun(t, "exec", "--", "sh", "-c",
		`curl -sS --fail --max-time 60 --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://localhost:`+envValue(h.env, "SHOP_ORDERS_PORT")+`/quote?sku=tee"`)
	if !strings.Contains(quote, `"price_cents": 1900`) {
		t.Fatalf("host -> orders -> pricing:\n%s", quote)
	}

	// A host process, through devmtls exec, reaches it by PRICING_ADDR.
	out = h.mustRun(t, "exec", "--", "sh", "-c",
		`curl -sS --fail --max-time 60 --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://$PRICING_ADDR/price?sku=cap"`)
	if !strings.Contains(out, `"price_cents": 1500`) {
		t.Fatalf("devmtls exec -> pricing:\n%s", out)
	}
	env := h.mustRun(t, "env", "--format", "json")
	if !strings.Contains(env, `"PRICING_ADDR": "`+pricingAddr+`"`) {
		t.Fatalf("devmtls env lacks PRICING_ADDR=%s:\n%s", pricingAddr, env)
	}
	// An IDE run configuration carries it too, and a process started with
	// exactly its environment reaches pricing.
	ideEnv := h.vscodeEnv(t)
	if ideEnv["PRICING_ADDR"] != pricingAddr {
		t.Fatalf("the VS Code configuration has PRICING_ADDR=%q, the forward listens at %s", ideEnv["PRICING_ADDR"], pricingAddr)
	}
	h.callPricingWithEnv(t, ideEnv)

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

	// down leaves no process, container (the relay's included) or network.
	h.mustRun(t, "down")
	h.checkNothingLeft(t, pid)

	// After a new up the IDE's configuration, unchanged, reaches pricing
	// again: the host port is the environment's own.
	h.mustRun(t, "up", "-d")
	st = h.status(t)
	if st.Forwards == nil || st.Forwards.Forwards[0].Host[0] != pricingAddr {
		t.Fatalf("after down and up the forward listens at %+v, the IDE has %s", st.Forwards, pricingAddr)
	}
	h.callPricingWithEnv(t, ideEnv)
	if body, err := h.callPricingFromOrders(t, "/price?sku=mug"); err != nil || !strings.Contains(body, `"price_cents": 1250`) {
		t.Fatalf("orders -> pricing after down and up: %v\n%s", err, body)
	}
	h.mustRun(t, "down")
	h.checkNothingLeft(t, st.Forwards.PID)
}

// checkNothingLeft: after down, no forwards process, container or network
// of the project remains, and no process names the shop's directory.
func (h *hybridShop) checkNothingLeft(t *testing.T, pid int) {
	t.Helper()
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
	if pids := processesMentioning(t, h.dir); len(pids) > 0 {
		t.Fatalf("processes %v still name %s after down", pids, h.dir)
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

	h := newHybridShop(t, path, line, false)
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

// TestHybridPortInUse: the host port devmtls chose for the forward, and
// recorded, is taken by another program at a later up: up says which port,
// why devmtls keeps it and how to free it, before compose starts anything.
func TestHybridPortInUse(t *testing.T) {
	testenv.ForEachCompose(t, testHybridPortInUse)
}

func testHybridPortInUse(t *testing.T, line testenv.ComposeLine) {
	h := newHybridShop(t, "", line, false)
	h.mustRun(t, "up", "-d")
	st := h.status(t)
	if st.Forwards == nil || len(st.Forwards.Forwards[0].Host) != 1 {
		t.Fatalf("status: %+v", st.Forwards)
	}
	hostAddr := st.Forwards.Forwards[0].Host[0]
	h.mustRun(t, "down")
	ln, err := net.Listen("tcp", hostAddr)
	if err != nil {
		t.Fatalf("take the forward's port: %v", err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(hostAddr)
	out, code := h.run(t, "up", "-d")
	if code != 1 || !strings.Contains(out, "forward pricing: its host port "+port+" (on 127.0.0.1") ||
		!strings.Contains(out, "is in use by another program") || !strings.Contains(out, "remove forwards/placement.json") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if ps, _ := exec.Command("docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+h.project).Output(); len(strings.TrimSpace(string(ps))) != 0 {
		t.Fatal("compose started the services although the forward could not listen")
	}
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
