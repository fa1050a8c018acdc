package portforward

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	constants "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
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

// webSocketPingServer answers the portforward subresource with a WebSocket
// upgrade to the SPDY tunnelling subprotocol, as an API server does, and
// counts the WebSocket ping frames it receives. It only reads: the SPDY
// connection tunnelled inside needs no answer to stay open.
type webSocketPingServer struct {
	pings atomic.Int64
}

func (s *webSocketPingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := gwebsocket.Upgrader{Subprotocols: []string{constants.WebsocketsSPDYTunnelingPrefix + portforward.PortForwardProtocolV1Name}}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	ws.SetPingHandler(func(data string) error {
		s.pings.Add(1)
		return ws.WriteControl(gwebsocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	for {
		// Control frames are handled while a message is being waited for.
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}

// TestAPIServerDialerPingsWebSocket: an idle stream connection tunnelled
// through a WebSocket sends WebSocket pings at the keepalive period, so the
// hop to the API server sees traffic, and sends none with pings off.
func TestAPIServerDialerPingsWebSocket(t *testing.T) {
	// dial opens an idle stream connection to a server of its own, so each
	// count is that connection's alone.
	dial := func(keepAlive time.Duration) *webSocketPingServer {
		t.Helper()
		api := &webSocketPingServer{}
		srv := httptest.NewTLSServer(api)
		t.Cleanup(srv.Close)
		cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d := &apiServerDialer{config: cfg, client: client, transport: TransportWebSocket, keepAlive: keepAlive}
		conn, err := d.DialPod("shop", "orders-a")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return api
	}
	on := dial(50 * time.Millisecond)
	eventually(t, "three WebSocket pings arrive on an idle connection with keepalive 50ms", func() bool { return on.pings.Load() >= 3 })
	off := dial(0)
	time.Sleep(time.Second)
	if n := off.pings.Load(); n != 0 {
		t.Errorf("an idle connection with pings off sent %d WebSocket pings in a second", n)
	}
}
