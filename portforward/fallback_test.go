package portforward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// spdyOnlyAPIServer answers the portforward subresource as an API server (or
// a proxy in front of one) that cannot upgrade to WebSockets: a WebSocket
// upgrade gets 400, a SPDY upgrade is served by Kubernetes' own SPDY
// library, with every data stream echoing what it receives. It counts the
// upgrades of each kind it saw.
type spdyOnlyAPIServer struct {
	websocket, spdy atomic.Int32
}

func (s *spdyOnlyAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/namespaces/shop/pods/orders-a/portforward") || !httpstream.IsUpgradeRequest(r) {
		http.NotFound(w, r)
		return
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.websocket.Add(1)
		http.Error(w, "WebSocket upgrades are not supported here", http.StatusBadRequest)
		return
	}
	s.spdy.Add(1)
	if _, err := httpstream.Handshake(r, w, []string{portforward.PortForwardProtocolV1Name}); err != nil {
		return
	}
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(stream httpstream.Stream, _ <-chan struct{}) error {
		if stream.Headers().Get(corev1.StreamType) == corev1.StreamTypeData {
			go func() {
				io.Copy(stream, stream)
				stream.Close()
			}()
		}
		return nil
	})
	if conn != nil {
		<-conn.CloseChan()
	}
}

// TestAPIServerDialerFallsBackToSPDY: where the WebSocket upgrade fails, auto
// (the default, kubectl's behaviour) opens the stream connection with SPDY
// and data flows through it; websocket alone fails, naming the pod; spdy
// never tries a WebSocket.
func TestAPIServerDialerFallsBackToSPDY(t *testing.T) {
	api := &spdyOnlyAPIServer{}
	srv := httptest.NewTLSServer(api)
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := NewAPIServerDialer(cfg, client, TransportAuto).DialPod("shop", "orders-a")
	if err != nil {
		t.Fatalf("auto with WebSockets refused: %v", err)
	}
	defer conn.Close()
	if ws, sp := api.websocket.Load(), api.spdy.Load(); ws != 1 || sp != 1 {
		t.Errorf("auto: %d WebSocket and %d SPDY upgrades; want one of each (WebSocket first)", ws, sp)
	}
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	h.Set(corev1.PortHeader, "8443")
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	stream, err := conn.CreateStream(h)
	if err != nil {
		t.Fatalf("a stream over the SPDY connection: %v", err)
	}
	if _, err := stream.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 4)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(stream, echo); done <- err }()
	select {
	case err := <-done:
		if err != nil || string(echo) != "ping" {
			t.Fatalf("echo over SPDY: %q, %v", echo, err)
		}
	case <-time.After(time.Minute): // a hang bound, not a measurement
		t.Fatal("no echo over the SPDY stream")
	}

	if c, err := NewAPIServerDialer(cfg, client, TransportWebSocket).DialPod("shop", "orders-a"); err == nil {
		c.Close()
		t.Error("websocket alone connected to a server without WebSockets")
	} else if !strings.Contains(err.Error(), "open a port-forward stream to pod shop/orders-a") {
		t.Errorf("websocket alone: %v", err)
	}
	before := api.websocket.Load()
	c, err := NewAPIServerDialer(cfg, client, TransportSPDY).DialPod("shop", "orders-a")
	if err != nil {
		t.Fatalf("spdy: %v", err)
	}
	c.Close()
	if api.websocket.Load() != before {
		t.Error("spdy tried a WebSocket upgrade")
	}
}
