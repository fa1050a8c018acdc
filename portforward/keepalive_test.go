package portforward

import (
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// countingListener counts the bytes the server reads from its clients.
type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return readCounter{Conn: c, read: l.read}, nil
}

type readCounter struct {
	net.Conn
	read *atomic.Int64
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestAPIServerDialerPings: an idle SPDY stream connection sends pings at the
// keepalive period, and nothing at all with pings off. The server is the
// SPDY-only stand-in of fallback_test.go; test/e2e proves the same against
// the real API server behind a proxy that drops idle connections, on both
// transports.
func TestAPIServerDialerPings(t *testing.T) {
	var read atomic.Int64
	srv := httptest.NewUnstartedServer(&spdyOnlyAPIServer{})
	srv.Listener = countingListener{Listener: srv.Listener, read: &read}
	srv.StartTLS()
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	idleBytes := func(keepAlive time.Duration) int64 {
		d := &apiServerDialer{config: cfg, client: client, transport: TransportSPDY, keepAlive: keepAlive}
		conn, err := d.DialPod("shop", "orders-a")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		time.Sleep(100 * time.Millisecond) // let the upgrade's own bytes arrive
		before := read.Load()
		time.Sleep(time.Second)
		return read.Load() - before
	}
	if n := idleBytes(50 * time.Millisecond); n == 0 {
		t.Error("an idle stream connection with keepalive 50ms sent nothing in a second")
	}
	if n := idleBytes(0); n != 0 {
		t.Errorf("an idle stream connection with pings off sent %d bytes in a second", n)
	}
}
