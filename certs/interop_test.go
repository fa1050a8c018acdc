package certs

// Interop with real TLS peers on loopback: OpenSSL, Python's ssl module,
// Node.js https, HAProxy, and Java (keytool and a JSSE client). Each peer reads
// the files exactly as the store writes them.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testenv"
)

// interopEnv is one generated environment plus the identities peers use.
type interopEnv struct {
	creds  *Credentials
	server *Identity // presented by servers
	client *Identity // presented by clients
}

func interopEnvs(t *testing.T) map[string]interopEnv {
	t.Helper()
	configs := map[string]Request{
		"shared-ecdsa-p256": {},
		"ca-ecdsa-p256":     {Mode: ModeCA},
		"shared-rsa2048":    {KeyType: KeyRSA2048},
		"ca-ecdsa-p384":     {Mode: ModeCA, KeyType: KeyECDSAP384},
		"shared-ed25519":    {KeyType: KeyEd25519},
	}
	if !testing.Short() {
		configs["shared-rsa4096"] = Request{KeyType: KeyRSA4096}
	}
	out := map[string]interopEnv{}
	for name, req := range configs {
		req.Services = []string{"api", "worker"}
		s := &Store{Dir: filepath.Join(t.TempDir(), ".devmtls")}
		res, err := s.Ensure(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		srv, _ := res.Credentials.Service("api")
		cli, _ := res.Credentials.Service("worker")
		out[name] = interopEnv{creds: res.Credentials, server: srv, client: cli}
	}
	return out
}

func runPeer(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// goServer starts an HTTPS server that requires a client certificate from env
// and answers with the client's common name.
func goServer(t *testing.T, e interopEnv) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", e.creds.ServerConfig(e.server))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s", r.TLS.PeerCertificates[0].Subject.CommonName)
		}),
		// Refused handshakes are expected here; keep them out of the test log.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, addr string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("peer exited before listening on %s: %v", addr, err)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

func TestInteropOpenSSLVerify(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "apt-get install openssl")
	envs := interopEnvs(t)
	for name, e := range envs {
		t.Run(name, func(t *testing.T) {
			for _, id := range []*Identity{e.creds.Top, e.server, e.client} {
				out, err := runPeer(t, 30*time.Second, openssl, "verify", "-CAfile", id.Paths.CA, id.Paths.Cert)
				if err != nil || !strings.Contains(out, ": OK") {
					t.Fatalf("openssl verify %s: %v\n%s", id.Paths.Cert, err, out)
				}
			}
			// Another environment's anchor must not verify this one's certificate.
			for other, o := range envs {
				if other == name {
					continue
				}
				if out, err := runPeer(t, 30*time.Second, openssl, "verify", "-CAfile", o.creds.Top.Paths.CA, e.client.Paths.Cert); err == nil {
					t.Fatalf("%s's certificate verified against %s's anchor:\n%s", name, other, out)
				}
				break
			}
		})
	}
}

func TestInteropOpenSSLNameConstraints(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "apt-get install openssl")
	spec, err := Request{Mode: ModeCA, Services: []string{"api"}}.resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, caKey, err := generateCA(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := issueLeaf(spec, time.Now(), "bank", []string{"bank.example.org"}, m.caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca"), m.caPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "good"), m.services["api"].certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "rogue"), rogue.certPEM, 0o644)
	if out, err := runPeer(t, 30*time.Second, openssl, "verify", "-CAfile", filepath.Join(dir, "ca"), filepath.Join(dir, "good")); err != nil {
		t.Fatalf("in-constraint leaf: %v\n%s", err, out)
	}
	out, err := runPeer(t, 30*time.Second, openssl, "verify", "-CAfile", filepath.Join(dir, "ca"), filepath.Join(dir, "rogue"))
	if err == nil || !strings.Contains(out, "permitted subtree violation") {
		t.Fatalf("OpenSSL accepted a leaf outside the name constraints (err=%v):\n%s", err, out)
	}
}

func TestInteropOpenSSLServerAndClient(t *testing.T) {
	openssl := testenv.LookPath(t, "openssl", "apt-get install openssl")
	for name, e := range interopEnvs(t) {
		t.Run(name, func(t *testing.T) {
			sOpenSSL := func() string {
				port := strconv.Itoa(freePort(t))
				srv := exec.Command(openssl, "s_server", "-accept", "127.0.0.1:"+port,
					"-cert", e.server.Paths.Cert, "-key", e.server.Paths.Key, "-CAfile", e.creds.Top.Paths.CA,
					"-Verify", "1", "-verify_return_error", "-www", "-naccept", "1")
				out := &lineWaiter{want: "ACCEPT", ready: make(chan struct{})}
				srv.Stdout, srv.Stderr = out, out
				if err := srv.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
				// s_server -naccept 1 serves one connection, so readiness is read
				// from its "ACCEPT" line instead of probing the port.
				select {
				case <-out.ready:
				case <-time.After(15 * time.Second):
					t.Fatalf("openssl s_server did not start:\n%s", out.String())
				}
				return port
			}
			client := func(port string, withCert bool) (string, error) {
				args := []string{"s_client", "-connect", "127.0.0.1:" + port, "-CAfile", e.creds.Top.Paths.CA,
					"-verify_return_error", "-verify_hostname", verifyHost(e), "-ign_eof"}
				if withCert {
					args = append(args, "-cert", e.client.Paths.Cert, "-key", e.client.Paths.Key)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				c := exec.CommandContext(ctx, openssl, args...)
				c.Stdin = strings.NewReader("GET / HTTP/1.0\r\n\r\n")
				out, err := c.CombinedOutput()
				return string(out), err
			}

			port := sOpenSSL()
			out, err := client(port, true)
			if err != nil || !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "HTTP/1.0 200 ok") {
				t.Fatalf("mutual handshake failed: %v\n%s", err, out)
			}
			// s_server -www echoes the client certificate it verified.
			if !strings.Contains(out, "Client certificate") {
				t.Fatalf("server did not report the client certificate:\n%s", out)
			}

			port = sOpenSSL()
			out, err = client(port, false)
			if err == nil || !strings.Contains(out, "alert") {
				t.Fatalf("a client without a certificate was not refused (err=%v):\n%s", err, out)
			}
		})
	}
}

// lineWaiter collects a process's output and closes ready once a line
// containing want appears.
type lineWaiter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	ready chan struct{}
	done  bool
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

const pythonClient = `
import http.client, ssl, sys
cert, key, ca, port = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
if cert:
    ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=20)
conn.request("GET", "/")
r = conn.getresponse()
print(r.status, r.read().decode())
`

const nodeClient = `
const https = require('https'), fs = require('fs');
const [cert, key, ca, port] = process.argv.slice(2);
const opts = {host: '127.0.0.1', port: Number(port), ca: fs.readFileSync(ca), minVersion: 'TLSv1.2', timeout: 20000};
if (cert) { opts.cert = fs.readFileSync(cert); opts.key = fs.readFileSync(key); }
https.get(opts, res => {
  let body = '';
  res.on('data', d => body += d);
  res.on('end', () => console.log(res.statusCode, body));
}).on('error', e => { console.error('error:', e.message); process.exit(1); });
`

func TestInteropPythonAndNodeClients(t *testing.T) {
	python := testenv.LookPath(t, "python3", "apt-get install python3")
	node := testenv.LookPath(t, "node", "apt-get install nodejs")
	dir := t.TempDir()
	pyScript, jsScript := filepath.Join(dir, "client.py"), filepath.Join(dir, "client.js")
	os.WriteFile(pyScript, []byte(pythonClient), 0o644)
	os.WriteFile(jsScript, []byte(nodeClient), 0o644)
	envs := interopEnvs(t)
	for name, e := range envs {
		t.Run(name, func(t *testing.T) {
			addr := goServer(t, e)
			_, port, _ := net.SplitHostPort(addr)
			for _, peer := range []struct{ bin, script string }{{python, pyScript}, {node, jsScript}} {
				c := e.client
				out, err := runPeer(t, 60*time.Second, peer.bin, peer.script, c.Paths.Cert, c.Paths.Key, e.creds.Top.Paths.CA, port)
				want := "200 hello " + c.Certificate.Subject.CommonName
				if err != nil || !strings.Contains(out, want) {
					t.Fatalf("%s: %v\n%s (want %q)", filepath.Base(peer.bin), err, out, want)
				}
				out, err = runPeer(t, 60*time.Second, peer.bin, peer.script, "", "", e.creds.Top.Paths.CA, port)
				if err == nil {
					t.Fatalf("%s without a client certificate got through:\n%s", filepath.Base(peer.bin), out)
				}
			}
			// A client holding another environment's certificate is refused.
			for other, o := range envs {
				if other == name {
					continue
				}
				out, err := runPeer(t, 60*time.Second, python, pyScript, o.client.Paths.Cert, o.client.Paths.Key, e.creds.Top.Paths.CA, port)
				if err == nil {
					t.Fatalf("python with %s's certificate got through to %s:\n%s", other, name, out)
				}
				break
			}
		})
	}
}

func TestInteropHAProxy(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy", "apt-get install haproxy")
	for name, e := range interopEnvs(t) {
		t.Run(name, func(t *testing.T) {
			// The backend demands the environment's client certificate, so the
			// request only gets through if HAProxy presents key+cert to it
			// (HAProxy's `server … ssl verify required ca-file … crt …`).
			backend := goServer(t, e)
			port := freePort(t)
			cfg := fmt.Sprintf(`global
  log stderr format raw local0 info
defaults
  mode http
  log global
  timeout connect 5s
  timeout client 20s
  timeout server 20s
frontend mtls
  bind 127.0.0.1:%d ssl crt %s ca-file %s verify required
  default_backend app
backend app
  server app %s ssl verify required ca-file %s crt %s sni str(api) verifyhost %s
`, port, e.server.Paths.KeyCert, e.creds.Top.Paths.CA, backend, e.creds.Top.Paths.CA, e.client.Paths.KeyCert, verifyHost(e))
			cfgPath := filepath.Join(t.TempDir(), "haproxy.cfg")
			os.WriteFile(cfgPath, []byte(cfg), 0o600)
			if out, err := runPeer(t, 30*time.Second, haproxy, "-c", "-f", cfgPath); err != nil {
				t.Fatalf("haproxy -c: %v\n%s", err, out)
			}
			var hpLog bytes.Buffer
			hp := exec.Command(haproxy, "-db", "-f", cfgPath)
			hp.Stdout, hp.Stderr = &hpLog, &hpLog
			if err := hp.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- hp.Wait() }()
			defer hp.Process.Kill()
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			waitListening(t, addr, exited)

			get := func(cfg *tls.Config) (string, error) {
				client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
				resp, err := client.Get("https://" + addr + "/")
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return fmt.Sprintf("%d %s", resp.StatusCode, body), nil
			}
			cfgWithCert := e.creds.ClientConfig(e.client, verifyHost(e))
			got, err := get(cfgWithCert)
			// The backend sees HAProxy's client identity (the worker leaf).
			want := "200 hello " + e.client.Certificate.Subject.CommonName
			if err != nil || got != want {
				t.Fatalf("through HAProxy: %q, %v (want %q)\n%s", got, err, want, hpLog.String())
			}
			noCert := e.creds.ClientConfig(e.client, verifyHost(e))
			noCert.Certificates = nil
			if got, err := get(noCert); err == nil {
				t.Fatalf("HAProxy let a client without a certificate through: %q", got)
			}
		})
	}
}

func verifyHost(e interopEnv) string {
	if e.creds.Mode == ModeShared {
		return "localhost"
	}
	return "api"
}

const javaClient = `
import java.io.*;
import java.net.URL;
import java.security.KeyStore;
import javax.net.ssl.*;

public class Client {
  public static void main(String[] a) throws Exception {
    char[] pw = a[2].toCharArray();
    KeyStore ks = KeyStore.getInstance("PKCS12");
    try (InputStream in = new FileInputStream(a[0])) { ks.load(in, pw); }
    KeyStore ts = KeyStore.getInstance("PKCS12");
    try (InputStream in = new FileInputStream(a[1])) { ts.load(in, pw); }
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(ks, pw);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ts);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
    HttpsURLConnection c = (HttpsURLConnection) new URL(a[3]).openConnection();
    c.setSSLSocketFactory(ctx.getSocketFactory());
    try (BufferedReader r = new BufferedReader(new InputStreamReader(c.getInputStream()))) {
      System.out.println(c.getResponseCode() + " " + r.readLine());
    }
  }
}
`

func TestInteropJavaPKCS12(t *testing.T) {
	keytool := testenv.LookPath(t, "keytool", "apt-get install openjdk-17-jdk-headless")
	java := testenv.LookPath(t, "java", "apt-get install openjdk-17-jdk-headless")
	envs := interopEnvs(t)
	for _, name := range []string{"shared-ecdsa-p256", "ca-ecdsa-p256", "shared-rsa2048"} {
		e := envs[name]
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			files, err := e.creds.ExportFiles(e.client, FormatPKCS12, "s3cret-pw")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := WriteExport(out, files); err != nil {
				t.Fatal(err)
			}
			ks, ts := filepath.Join(out, "keystore.p12"), filepath.Join(out, "truststore.p12")
			list, err := runPeer(t, 60*time.Second, keytool, "-list", "-keystore", ks, "-storetype", "PKCS12", "-storepass", "s3cret-pw")
			if err != nil || !strings.Contains(list, "PrivateKeyEntry") {
				t.Fatalf("keytool -list keystore: %v\n%s", err, list)
			}
			list, err = runPeer(t, 60*time.Second, keytool, "-list", "-keystore", ts, "-storetype", "PKCS12", "-storepass", "s3cret-pw")
			if err != nil || !strings.Contains(list, "trustedCertEntry") {
				t.Fatalf("keytool -list truststore: %v\n%s", err, list)
			}
			if out, err := runPeer(t, 60*time.Second, keytool, "-list", "-keystore", ks, "-storetype", "PKCS12", "-storepass", "wrong-pw"); err == nil {
				t.Fatalf("keytool opened the keystore with a wrong password:\n%s", out)
			}
			// A real JSSE client completes mTLS with the keystore and truststore.
			src := filepath.Join(t.TempDir(), "Client.java")
			os.WriteFile(src, []byte(javaClient), 0o644)
			host := verifyHost(e)
			if host == "api" {
				host = "localhost" // the api leaf also names localhost
			}
			_, port, _ := net.SplitHostPort(goServer(t, e))
			got, err := runPeer(t, 120*time.Second, java, src, ks, ts, "s3cret-pw", "https://"+host+":"+port+"/")
			want := "200 hello " + e.client.Certificate.Subject.CommonName
			if err != nil || !strings.Contains(got, want) {
				t.Fatalf("java client: %v\n%s (want %q)", err, got, want)
			}
		})
	}
}
