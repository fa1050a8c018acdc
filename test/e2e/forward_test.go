package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/testenv"
)

// shop is one namespace set up as the clusters devmtls is made for: one
// self-signed cluster keypair that is its own trust anchor, in Secret mtls,
// and a dev environment on the laptop.
type shop struct {
	c       *cluster
	ns      string
	cluster *certs.Credentials // the cluster's keypair (CN tester)
	dev     *certs.Credentials // the laptop's dev keypair
}

func newShop(t testing.TB, tunnel bool) *shop {
	t.Helper()
	c := testCluster(t, tunnel)
	s := &shop{c: c, ns: c.namespace(t), cluster: keypair(t, certs.Request{CommonName: "tester"}), dev: keypair(t, certs.Request{})}
	c.clusterSecret(t, s.ns, "mtls", s.cluster)
	return s
}

func (s *shop) forward(t testing.TB, want int, args ...string) *forward {
	return startForward(t, s.c, s.dev.Dir, s.ns, want, args...)
}

func (s *shop) devClient() *tls.Config { return s.dev.ClientConfig(s.dev.Top, "localhost") }

// TestForwardSpeaksMTLSWherePortForwardCannot: the service demands the
// cluster's client certificate, so plain kubectl port-forward cannot be used,
// while devmtls forward can.
func TestForwardSpeaksMTLSWherePortForwardCannot(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "orders", 2, "http")
	f := s.forward(t, 2, "svc/orders", ":443")
	addr := f.ipv4(t, 0)

	body, err := httpsGet(addr, s.devClient())
	if err != nil || !strings.HasPrefix(body, "hello from orders-") || !strings.Contains(body, "to tester") {
		t.Fatalf("through devmtls forward: %q, %v\n%s", body, err, f.stderr)
	}
	// The local side demands the dev certificate: none, or the cluster's, fails.
	noCert := s.devClient()
	noCert.Certificates = nil
	if _, err := httpsGet(addr, noCert); err == nil {
		t.Error("a local client without a certificate was served")
	}
	wrong := s.cluster.ClientConfig(s.cluster.Top, "localhost")
	wrong.RootCAs = s.dev.Pool()
	if _, err := httpsGet(addr, wrong); err == nil {
		t.Error("a local client with a certificate from outside the dev environment was served")
	}

	// The same request through plain kubectl port-forward fails the handshake:
	// the pod wants the cluster's certificate, which the laptop does not hold.
	kaddr, _ := s.c.kubectlPortForward(t, s.ns, "svc/orders", ":443")
	insecure := s.devClient()
	insecure.InsecureSkipVerify = true
	if body, err := httpsGet(kaddr, insecure); err == nil {
		t.Fatalf("plain kubectl port-forward reached the mTLS service with dev credentials: %q", body)
	} else if !strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "tls") {
		t.Fatalf("plain kubectl port-forward failed for another reason than the handshake: %v", err)
	}
}

func TestForwardLocalPlainServesCurl(t *testing.T) {
	curl := testenv.LookPath(t, "curl", "apt-get install curl")
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "orders", 1, "http")
	f := s.forward(t, 2, "--local", "plain", "svc/orders", ":443")
	out, err := exec.Command(curl, "-sS", "--max-time", "60", "http://"+f.ipv4(t, 0)+"/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "to tester") {
		t.Fatalf("curl without credentials through --local plain: %v\n%s\n%s", err, out, f.stderr)
	}

	// Plain text never leaves loopback.
	out2, code := devmtls(t, "--dir", s.dev.Dir, "forward", "--kubeconfig", s.c.kubeconfig, "-n", s.ns, "--local", "plain", "--address", "0.0.0.0", "svc/orders", ":443")
	if code != 2 || !strings.Contains(out2, "refusing to listen on 0.0.0.0") {
		t.Fatalf("--local plain on 0.0.0.0: exit %d\n%s", code, out2)
	}
}

func TestForwardSeveralTargetsInOneProcess(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "orders", 1, "http")
	s.c.deployMTLS(t, s.ns, "payments", 1, "http")
	pod := s.c.pods(t, s.ns, "payments")[0]
	f := s.forward(t, 6, "svc/orders", ":443", "svc/payments", ":https", "pod/"+pod, ":8443")
	for i, want := range []string{"hello from orders-", "hello from payments-", "hello from " + pod} {
		body, err := httpsGet(f.ipv4(t, i), s.devClient())
		if err != nil || !strings.HasPrefix(body, want) {
			t.Errorf("listener %d: %q, %v (want %q)", i, body, err, want)
		}
	}
}

// TestForwardSurvivesPodRestart deletes the only pod in the middle of a
// transfer: the transfer ends, the listener stays, and the next connection is
// served by the replacement the ReplicaSet controller creates.
func TestForwardSurvivesPodRestart(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "echo", 1, "echo")
	f := s.forward(t, 2, "deploy/echo", ":8443")
	addr := f.ipv4(t, 0)
	dial := func() (net.Conn, error) { return tls.Dial("tcp", addr, s.devClient()) }

	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := echoTransfer(conn, 1<<30, 1); err != nil {
		t.Fatalf("1 GiB before the restart: %v\n%s", err, f.stderr)
	}
	conn.Close()

	old := s.c.pods(t, s.ns, "echo")[0]
	inflight, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() { result <- echoTransfer(inflight, 8<<30, 2) }()
	time.Sleep(2 * time.Second) // let the transfer get going
	s.c.kubectl(t, "-n", s.ns, "delete", "pod", old, "--wait=false")
	select {
	case err := <-result:
		if err == nil {
			t.Fatal("an 8 GiB echo finished although its pod was deleted in the middle")
		}
		t.Logf("in-flight connection ended: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the in-flight connection hung after its pod was deleted")
	}
	inflight.Close()

	s.c.kubectl(t, "-n", s.ns, "rollout", "status", "deploy/echo", "--timeout=3m")
	readyAt := time.Now()
	replacement := s.c.pods(t, s.ns, "echo")
	if len(replacement) != 1 || replacement[0] == old {
		t.Fatalf("pods after the restart: %v (old %s)", replacement, old)
	}
	conn, err = dial()
	if err != nil {
		t.Fatalf("first connection after the replacement became Ready: %v\n%s", err, f.stderr)
	}
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := conn.Read(one); err != nil {
		t.Fatalf("first byte from the replacement: %v\n%s", err, f.stderr)
	}
	// Reported, not asserted: wall-clock limits do not belong in tests here.
	t.Logf("first byte served by the replacement %s after kubectl saw it Ready", time.Since(readyAt).Round(time.Millisecond))
	conn.Close()
	conn, err = dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := echoTransfer(conn, 1<<30, 3); err != nil {
		t.Fatalf("1 GiB after the restart: %v\n%s", err, f.stderr)
	}
	conn.Close()
	// Every connection is an event (opened, closed); what is counted is the
	// rest: failures must be logged once per cause.
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(f.stderr.String()), "\n") {
		if !strings.Contains(line, " opened ") && !strings.Contains(line, " closed ") && !strings.Contains(line, " listening ") {
			n++
		}
	}
	if n > 10 {
		t.Errorf("the restart produced %d log lines besides connection events; failures must be logged once per cause:\n%s", n, f.stderr)
	}
}

func TestForwardFiveHundredConcurrentConnections(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "echo", 2, "echo")
	f := s.forward(t, 2, "svc/echo", ":443")
	addr := f.ipv4(t, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := tls.Dial("tcp", addr, s.devClient())
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			defer conn.Close()
			if err := echoTransfer(conn, 256<<10, uint64(i)); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 5 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of 500 connections failed\n%s", n, f.stderr)
	}
}

func TestForwardInterruptClosesEverything(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "echo", 1, "echo")
	f := s.forward(t, 2, "svc/echo", ":443")
	addr := f.ipv4(t, 0)
	conn, err := tls.Dial("tcp", addr, s.devClient())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The connection must be through to the pod before the interrupt, or
	// the test would pass on one that never worked.
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatalf("write through the forward: %v\n%s", err, f.stderr)
	}
	conn.SetReadDeadline(time.Now().Add(time.Minute)) // a hang bound, not a measurement
	echo := make([]byte, 4)
	if _, err := io.ReadFull(conn, echo); err != nil || string(echo) != "ping" {
		t.Fatalf("the echo through the forward: %q, %v\n%s", echo, err, f.stderr)
	}
	took := f.stop(t)
	t.Logf("devmtls forward exited %s after SIGINT with a connection open", took.Round(time.Millisecond))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the open connection still answers after the forward exited")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after the forward exited")
	}
}
