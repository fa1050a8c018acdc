package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// idleProxy relays TCP to the API server and drops every connection on which
// nothing has passed either way for idle, as the load balancers clouds put in
// front of API servers do (kubernetes#19231). It exists only here: devmtls
// never ships a proxy.
type idleProxy struct {
	ln      net.Listener
	target  string
	idle    time.Duration
	dropped atomic.Int64
}

func startIdleProxy(t testing.TB, target string, idle time.Duration) *idleProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &idleProxy{ln: ln, target: target, idle: idle}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(c)
		}
	}()
	return p
}

// activity notes the time of the last byte through a connection.
type activity struct {
	net.Conn
	last *atomic.Int64
}

func (a activity) Read(b []byte) (int, error) {
	n, err := a.Conn.Read(b)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (p *idleProxy) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	go func() { io.Copy(server, activity{client, &last}); done <- struct{}{} }()
	go func() { io.Copy(client, activity{server, &last}); done <- struct{}{} }()
	tick := time.NewTicker(p.idle / 10)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if time.Since(time.Unix(0, last.Load())) >= p.idle {
				p.dropped.Add(1)
				return // the deferred closes drop both sides
			}
		}
	}
}

// proxiedKubeconfig is the cluster's kubeconfig with its server replaced by
// an idleProxy, keeping the API server's name for verifying its
// certificate (tls-server-name).
func (c *cluster) proxiedKubeconfig(t testing.TB, idle time.Duration) (string, *idleProxy) {
	t.Helper()
	server := c.kubectl(t, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	name := c.kubectl(t, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].name}")
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startIdleProxy(t, u.Host, idle)
	data, err := os.ReadFile(c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c.kubectl(t, "--kubeconfig", path, "config", "set-cluster", name,
		"--server=https://"+proxy.ln.Addr().String(), "--tls-server-name="+u.Hostname())
	return path, proxy
}

// echoOnce sends msg through an echo connection and reads it back.
func echoOnce(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(time.Minute)) // a hang bound, not a measurement
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(got, []byte(msg)) {
		return fmt.Errorf("echoed %q, sent %q", got, msg)
	}
	return nil
}

// TestForwardIdleConnectionSurvivesDroppingProxy: a forwarded connection idle
// for 60s, through a proxy in front of the API server that drops connections
// idle for 5s, still echoes with keepalive pings, on both transports; with
// pings off the same connection is cut, which shows the proxy really drops.
func TestForwardIdleConnectionSurvivesDroppingProxy(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "echo", 1, "echo")
	proxied, proxy := s.c.proxiedKubeconfig(t, 5*time.Second)
	if out, err := s.c.kubectlErr("--kubeconfig", proxied, "-n", s.ns, "get", "svc/echo"); err != nil {
		t.Fatalf("kubectl through the proxy: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		transport, keepalive string
		survives             bool
	}{
		{"websocket", "2s", true},
		{"spdy", "2s", true},
		{"websocket", "0", false},
		{"spdy", "0", false},
	} {
		t.Run(tc.transport+" keepalive "+tc.keepalive, func(t *testing.T) {
			t.Parallel()
			f := runForward(t, osexec.Command(devmtlsBin, "--dir", s.dev.Dir, "forward", "--kubeconfig", proxied, "-n", s.ns,
				"--transport", tc.transport, "--keepalive", tc.keepalive, "svc/echo", ":443"), 2)
			conn, err := tls.Dial("tcp", f.ipv4(t, 0), s.devClient())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := echoOnce(conn, "before the pause"); err != nil {
				t.Fatalf("before idling: %v\n%s", err, f.stderr)
			}
			time.Sleep(60 * time.Second)
			err = echoOnce(conn, "after a minute of nothing")
			switch {
			case tc.survives && err != nil:
				t.Fatalf("idle for 60s behind the dropping proxy with --keepalive %s: %v\n%s", tc.keepalive, err, f.stderr)
			case !tc.survives && err == nil:
				t.Fatalf("with pings off the idle connection survived the proxy (%d connections dropped): the proxy does not drop what it should", proxy.dropped.Load())
			}
			if !tc.survives {
				t.Logf("with pings off, as expected: %v (the proxy dropped %d connections)", err, proxy.dropped.Load())
			}
		})
	}
}
