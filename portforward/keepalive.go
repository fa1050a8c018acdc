package portforward

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	constants "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	clientspdy "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/transport/websocket"
	"k8s.io/streaming/pkg/httpstream"
	streamspdy "k8s.io/streaming/pkg/httpstream/spdy"
)

// The stream connection to a pod can sit idle for hours while a developer's
// connection through it is idle; a proxy or load balancer in front of the API
// server drops it long before (kubernetes#19231: "lost connection to pod").
// client-go pings SPDY connections every 5s and its WebSocket tunnel every
// 10s, fixed; devmtls builds the same two dialers with the period of
// Options.KeepAlive (0 here: no pings), and pings the WebSocket itself too,
// so the hop to the API server sees traffic even where the SPDY pings inside
// the tunnel are answered further away.

// spdyRoundTripperFor is client-go's spdy.RoundTripperFor with the ping period
// as a parameter.
func spdyRoundTripperFor(cfg *rest.Config, keepAlive time.Duration) (http.RoundTripper, clientspdy.Upgrader, error) {
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	proxy := http.ProxyFromEnvironment
	if cfg.Proxy != nil {
		proxy = cfg.Proxy
	}
	upgrader, err := streamspdy.NewRoundTripperWithConfig(streamspdy.RoundTripperConfig{TLS: tlsConfig, Proxier: proxy, PingPeriod: keepAlive})
	if err != nil {
		return nil, nil, err
	}
	wrapped, err := rest.HTTPWrappersForConfig(cfg, upgrader)
	if err != nil {
		return nil, nil, err
	}
	return wrapped, clientspdy.NewUpgraderForStreaming(upgrader), nil
}

// webSocketDialer is client-go's SPDY-over-WebSocket tunneling dialer with
// the ping period as a parameter.
type webSocketDialer struct {
	url       *url.URL
	transport http.RoundTripper
	holder    websocket.ConnectionHolder
	keepAlive time.Duration
}

func newWebSocketDialer(u *url.URL, cfg *rest.Config, keepAlive time.Duration) (httpstream.Dialer, error) {
	rt, holder, err := websocket.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	return &webSocketDialer{url: u, transport: rt, holder: holder, keepAlive: keepAlive}, nil
}

func (d *webSocketDialer) Dial(protocols ...string) (httpstream.Connection, string, error) {
	// WebSockets require GET (RFC 6455 section 4.1).
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, d.url.String(), nil)
	if err != nil {
		return nil, "", err
	}
	tunneled := make([]string, 0, len(protocols))
	for _, p := range protocols {
		tunneled = append(tunneled, constants.WebsocketsSPDYTunnelingPrefix+p)
	}
	ws, err := websocket.Negotiate(d.transport, d.holder, req, tunneled...)
	if err != nil {
		return nil, "", err
	}
	if ws == nil {
		return nil, "", fmt.Errorf("negotiated websocket connection is nil")
	}
	protocol := strings.TrimPrefix(ws.Subprotocol(), constants.WebsocketsSPDYTunnelingPrefix)
	tunnel := portforward.NewTunnelingConnection("client", ws)
	conn, err := streamspdy.NewClientConnectionWithPings(tunnel, d.keepAlive)
	if err != nil {
		tunnel.Close()
		return nil, "", err
	}
	if d.keepAlive > 0 {
		go pingWebSocket(ws, d.keepAlive, conn.CloseChan())
	}
	return conn, protocol, nil
}

// pingWebSocket sends a WebSocket ping every period until done is closed or
// a ping cannot be written. gorilla's WriteControl may run alongside the
// tunnel's own writes.
func pingWebSocket(ws *gwebsocket.Conn, period time.Duration, done <-chan bool) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if err := ws.WriteControl(gwebsocket.PingMessage, nil, time.Now().Add(period)); err != nil {
				return
			}
		}
	}
}
