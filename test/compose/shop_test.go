//go:build linux

// The example shop runs on the Linux Docker Engine; the key owners it checks
// are Linux uids.

package composetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/testenv"
)

// shopClient is a host process with the environment's credentials, like the
// Python and Node.js clients.
type shopClient struct {
	cert tls.Certificate
	pool *x509.CertPool
	leaf []byte // the certificate the server should present (shared mode)
}

func loadShopClient(t *testing.T, envDir string) *shopClient {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(envDir, "cert"), filepath.Join(envDir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(envDir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &shopClient{cert: cert, pool: pool, leaf: cert.Certificate[0]}
}

// get calls url over TLS presenting clientCert (nil: none) and returns the
// body and the server's certificate.
func (c *shopClient) get(url string, clientCert *tls.Certificate) ([]byte, *x509.Certificate, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.pool}
	if clientCert != nil {
		// Presented whatever the server asks for, so a foreign certificate
		// really reaches the server.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return clientCert, nil }
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, nil, fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return body, resp.TLS.PeerCertificates[0], nil
}

// waitReady polls url until it answers over mTLS (containers take a moment).
func (c *shopClient) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, _, err := c.get(url, &c.cert)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer over mTLS within 60s: %v", url, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func foreignCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "devmtls"}, DNSNames: []string{"localhost", "orders"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type ordersReply struct {
	ServedBy string `json:"served_by"`
	Client   string `json:"client"`
	Orders   []struct {
		ID    string `json:"id"`
		Stock *struct {
			Available int `json:"available"`
		} `json:"stock"`
	} `json:"orders"`
}

func checkOrders(t *testing.T, body []byte) ordersReply {
	t.Helper()
	var r ordersReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if r.ServedBy != "orders" || len(r.Orders) != 3 {
		t.Fatalf("orders reply %s", body)
	}
	for _, o := range r.Orders {
		if o.Stock == nil {
			t.Fatalf("order %s has no stock: inventory (and its call back to orders) did not answer: %s", o.ID, body)
		}
	}
	return r
}

func sha(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// containerOf returns the id of service's (single) container.
func containerOf(t *testing.T, s statusJSON, service string) string {
	t.Helper()
	svc := s.service(service)
	if svc == nil || len(svc.Containers) != 1 {
		t.Fatalf("service %s: want one container, status says %+v", service, svc)
	}
	return svc.Containers[0].ID
}

// execCall runs the shop binary's call mode inside a container.
func execCall(t *testing.T, container string, args ...string) (string, error) {
	t.Helper()
	return docker(t, append([]string{"exec", container, "/shopsvc", "call"}, args...)...)
}

// TestExampleShop is the proof on the bundled example: devmtls up -d
// on the real Docker Engine, with each Compose line; every mTLS call between
// containers and from host clients works; calls without a client certificate
// or with one from elsewhere are refused; status reports the mounts and the
// compose it drives; the user's files stay byte-identical; rotation recreates
// exactly the services whose credentials changed and they keep talking; down
// leaves nothing.
func TestExampleShop(t *testing.T) {
	t.Parallel()
	testenv.ForEachCompose(t, testExampleShop)
}

func testExampleShop(t *testing.T, line testenv.ComposeLine) {
	shopImage, haproxyImage := exampleImages(t)
	dir := t.TempDir()
	copyTree(t, filepath.Join(repoRoot(t), "examples", "shop"), dir)
	userFiles := []string{filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "haproxy", "haproxy.cfg")}
	before := map[string][32]byte{}
	for _, f := range userFiles {
		before[f] = sha(t, f)
	}
	ports := freePorts(t, 3)
	p := newE2EProject(t, dir, line, "SHOP_IMAGE="+shopImage, "SHOP_HAPROXY_IMAGE="+haproxyImage,
		fmt.Sprintf("SHOP_GATEWAY_PORT=%d", ports[0]), fmt.Sprintf("SHOP_ORDERS_PORT=%d", ports[1]), fmt.Sprintf("SHOP_DOCS_PORT=%d", ports[2]))
	gateway := fmt.Sprintf("https://localhost:%d", ports[0])
	orders := fmt.Sprintf("https://localhost:%d", ports[1])
	envDir := filepath.Join(dir, ".devmtls")

	// --wait: the v2 line waits itself; for v1, which lacks the flag, devmtls
	// runs up -d and waits in its place.
	p.must("up", "--wait", "--wait-timeout", "120")
	for _, svc := range p.status().Services {
		for _, c := range svc.Containers {
			if c.State != "running" {
				t.Errorf("after up --wait, %s is %s", c.Name, c.State)
			}
		}
	}
	client := loadShopClient(t, envDir)
	client.waitReady(t, gateway+"/orders")
	client.waitReady(t, orders+"/whoami")
	st := p.status()
	ordersC, inventoryC, gatewayC := containerOf(t, st, "orders"), containerOf(t, st, "inventory"), containerOf(t, st, "gateway")

	t.Run("mTLS between containers", func(t *testing.T) {
		// host -> HAProxy (mTLS) -> orders (mTLS) -> inventory (mTLS) -> orders (mTLS)
		body, serverCert, err := client.get(gateway+"/orders", &client.cert)
		if err != nil {
			t.Fatal(err)
		}
		checkOrders(t, body)
		if !bytes.Equal(serverCert.Raw, client.leaf) {
			t.Error("HAProxy does not present the environment's keypair")
		}
		for _, c := range []struct{ from, url string }{
			{ordersC, "https://inventory:8443/stock?sku=mug"},
			{inventoryC, "https://orders:8443/whoami"},
			{inventoryC, "https://gateway:8443/whoami"},
		} {
			if out, err := execCall(t, c.from, c.url); err != nil {
				t.Errorf("call %s from %.12s: %v\n%s", c.url, c.from, err, out)
			}
		}
	})

	t.Run("refused without a certificate from this environment", func(t *testing.T) {
		for _, url := range []string{gateway + "/orders", orders + "/whoami"} {
			if _, _, err := client.get(url, nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
				t.Errorf("%s without a client certificate: %v", url, err)
			}
			if _, _, err := client.get(url, foreignCert(t)); err == nil || !strings.Contains(err.Error(), "unknown") {
				t.Errorf("%s with a foreign certificate: %v", url, err)
			}
		}
		for _, flag := range []string{"-no-client-cert", "-foreign-cert"} {
			for _, url := range []string{"https://inventory:8443/whoami", "https://gateway:8443/orders"} {
				out, err := execCall(t, ordersC, flag, url)
				if err == nil || !(strings.Contains(out, "certificate required") || strings.Contains(out, "unknown")) {
					t.Errorf("%s %s from orders: %v %s", flag, url, err, out)
				}
			}
		}
	})

	t.Run("host clients in Python and Node.js", func(t *testing.T) {
		env := append(os.Environ(), "MTLS_CERT="+filepath.Join(envDir, "cert"), "MTLS_KEY="+filepath.Join(envDir, "key"), "MTLS_CA="+filepath.Join(envDir, "ca"))
		for _, c := range []struct{ bin, script, url string }{
			{"python3", "clients/python/client.py", gateway + "/orders"},
			{"node", "clients/node/client.js", orders + "/orders"},
		} {
			bin := testenv.LookPath(t, c.bin, "apt-get install python3 nodejs")
			cmd := exec.Command(bin, filepath.Join(dir, c.script), c.url)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "3 orders over mTLS") {
				t.Errorf("%s %s: %v\n%s", c.bin, c.script, err, out)
			}
		}
	})

	t.Run("status reports the mounts", func(t *testing.T) {
		if !st.Docker.Reachable || st.Docker.APIVersion == "" || st.Credentials == nil || st.Credentials.Mode != certs.ModeShared {
			t.Errorf("status header %+v %+v", st.Docker, st.Credentials)
		}
		wantImpl := compose.ComposeV2
		if line.V1 {
			wantImpl = compose.ComposeV1
		}
		if c := st.Compose; c == nil || c.Implementation != wantImpl || c.Version != line.Version || c.Error != "" {
			t.Errorf("status names the compose %+v, want %s %s", c, wantImpl, line.Version)
		}
		for _, name := range []string{"orders", "inventory", "gateway"} {
			svc := st.service(name)
			c := svc.Containers[0]
			mounted := false
			for _, m := range c.Mounts {
				if m.Destination == "/var/mtls" && m.Source == filepath.Join(envDir, "compose", name, "mtls") && m.ReadOnly {
					mounted = true
				}
			}
			if !svc.OptedIn || c.Credentials != compose.CredsCurrent || !mounted || c.State != "running" {
				t.Errorf("%s: %+v", name, svc)
			}
			// The lines name containers differently; status shows what the
			// Engine has.
			if want := line.ContainerName(p.name, name, 1); c.Name != want {
				t.Errorf("%s's container is %s, want %s", name, c.Name, want)
			}
		}
		docs := st.service("docs")
		if docs == nil || docs.OptedIn || len(docs.Containers) != 1 || docs.Containers[0].Credentials != compose.CredsOptedOut || len(docs.Containers[0].Mounts) != 0 {
			t.Errorf("docs: %+v", docs)
		}
		text := p.must("status")
		if !strings.Contains(text, "mounted at /var/mtls") || !strings.Contains(text, "opted-out") ||
			!strings.Contains(text, line.Version) || !strings.Contains(text, line.ContainerName(p.name, "orders", 1)) {
			t.Errorf("status:\n%s", text)
		}
	})

	t.Run("keys belong to the container user, 0600", func(t *testing.T) {
		for name, uid := range map[string]uint32{"orders": 10001, "inventory": 10002, "gateway": 99} {
			for _, f := range []string{"key", "key+cert"} {
				fi, err := os.Stat(filepath.Join(envDir, "compose", name, "mtls", f))
				if err != nil {
					t.Fatal(err)
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s/%s: owner %d mode %v, want %d 0600", name, f, st.Uid, fi.Mode().Perm(), uid)
				}
			}
		}
	})

	t.Run("a second up changes nothing", func(t *testing.T) {
		overlay := filepath.Join(envDir, compose.OverlayFile)
		fi1, _ := os.Stat(overlay)
		p.must("up", "-d")
		fi2, _ := os.Stat(overlay)
		if after := p.status().containerIDs(); fmt.Sprint(after) != fmt.Sprint(st.containerIDs()) {
			t.Errorf("containers recreated without any change:\n%v\n%v", st.containerIDs(), after)
		}
		if !fi1.ModTime().Equal(fi2.ModTime()) {
			t.Error("the overlay was rewritten without any change")
		}
	})

	t.Run("rotation recreates what must change and the services keep talking", func(t *testing.T) {
		beforeIDs := p.status().containerIDs()
		p.must("certs", "rotate")
		stale := p.status()
		for _, name := range []string{"orders", "inventory", "gateway"} {
			if c := stale.service(name).Containers[0]; c.Credentials != compose.CredsStale {
				t.Errorf("%s after rotate, before up: %s, want stale", name, c.Credentials)
			}
		}
		p.must("up", "-d")
		afterIDs := p.status().containerIDs()
		for _, name := range []string{"orders", "inventory", "gateway"} {
			if beforeIDs[name] == afterIDs[name] {
				t.Errorf("%s was not recreated with its new credentials", name)
			}
		}
		if beforeIDs["docs"] != afterIDs["docs"] {
			t.Error("docs (x-devmtls: false) was recreated though nothing of it changed")
		}
		rotated := loadShopClient(t, envDir)
		if bytes.Equal(rotated.leaf, client.leaf) {
			t.Fatal("certs rotate did not change the keypair")
		}
		rotated.waitReady(t, gateway+"/orders")
		body, serverCert, err := rotated.get(gateway+"/orders", &rotated.cert)
		if err != nil {
			t.Fatal(err)
		}
		checkOrders(t, body)
		if !bytes.Equal(serverCert.Raw, rotated.leaf) {
			t.Error("the gateway still presents the old certificate")
		}
		if _, _, err := rotated.get(gateway+"/orders", &client.cert); err == nil {
			t.Error("the rotated-away keypair is still accepted")
		}
		ordersC = containerOf(t, p.status(), "orders")
		if out, err := execCall(t, ordersC, "https://inventory:8443/stock?sku=tee"); err != nil {
			t.Errorf("orders -> inventory after rotation: %v\n%s", err, out)
		}
	})

	t.Run("user files are byte-identical", func(t *testing.T) {
		for _, f := range userFiles {
			if sha(t, f) != before[f] {
				t.Errorf("%s changed", f)
			}
		}
	})

	t.Run("down leaves no containers or networks", func(t *testing.T) {
		p.must("down")
		if left := p.leftovers(); left != "" {
			t.Errorf("left behind: %s", left)
		}
		if _, err := os.Stat(filepath.Join(envDir, "cert")); err != nil {
			t.Error("down removed the credentials")
		}
	})
	_ = gatewayC
}
