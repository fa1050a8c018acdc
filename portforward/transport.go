package portforward

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// Transport chooses how streams reach the API server.
type Transport string

// Transports. Auto is kubectl's behaviour since 1.31: WebSockets first,
// falling back to SPDY when the server cannot upgrade.
const (
	TransportAuto      Transport = "auto"
	TransportWebSocket Transport = "websocket"
	TransportSPDY      Transport = "spdy"
)

// ParseTransport accepts auto, websocket or spdy.
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(strings.ToLower(s)); t {
	case TransportAuto, TransportWebSocket, TransportSPDY:
		return t, nil
	case "":
		return TransportAuto, nil
	}
	return "", fmt.Errorf("unknown transport %q: use auto, websocket or spdy", s)
}

// PodDialer opens one upgraded stream connection to a pod's portforward
// subresource; the forwarder creates a data and error stream pair on it per
// local connection. It is the seam client-go's portforward.New has in its
// httpstream.Dialer, per pod instead of per URL since the forwarder picks
// the pod.
type PodDialer interface {
	DialPod(namespace, pod string) (httpstream.Connection, error)
}

// NewAPIServerDialer dials pods through the API server of cfg, as kubectl
// port-forward does, with the given transport.
func NewAPIServerDialer(cfg *rest.Config, client kubernetes.Interface, t Transport) PodDialer {
	return &apiServerDialer{config: cfg, client: client, transport: t, keepAlive: DefaultKeepAlive}
}

type apiServerDialer struct {
	config    *rest.Config
	client    kubernetes.Interface
	transport Transport
	keepAlive time.Duration // ping period; 0 turns pings off (see keepalive.go)
}

func (d *apiServerDialer) DialPod(namespace, pod string) (httpstream.Connection, error) {
	if d.config == nil || d.client == nil {
		return nil, errors.New("no Kubernetes API server configured")
	}
	u := d.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	rt, upgrader, err := spdyRoundTripperFor(d.config, d.keepAlive)
	if err != nil {
		return nil, err
	}
	// The SPDY upgrader reports a refused upgrade as text only; the status
	// code it answered is kept here to classify the failure.
	status := &statusRecorder{next: rt}
	var dialer httpstream.Dialer = spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: status}, http.MethodPost, u)
	if d.transport != TransportSPDY {
		ws, err := newWebSocketDialer(u, d.config, d.keepAlive)
		if err != nil {
			return nil, err
		}
		if d.transport == TransportWebSocket {
			dialer = ws
		} else {
			dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, func(err error) bool {
				return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
			})
		}
	}
	conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		if isForbidden(err) || status.code.Load() == http.StatusForbidden {
			return nil, forbidden(err, "create", "pods/portforward", namespace)
		}
		return nil, fmt.Errorf("open a port-forward stream to pod %s/%s: %w", namespace, pod, err)
	}
	return conn, nil
}

// isForbidden reports an RBAC refusal.
func isForbidden(err error) bool { return apierrors.IsForbidden(upgradeCause(err)) }

// upgradeCause is what made an upgrade fail: the WebSocket dialer wraps the
// API server's Status in an UpgradeFailureError, which does not unwrap.
func upgradeCause(err error) error {
	var upgrade *httpstream.UpgradeFailureError
	if errors.As(err, &upgrade) && upgrade.Cause != nil {
		return upgrade.Cause
	}
	return err
}

// statusRecorder keeps the status code of the last response through it.
type statusRecorder struct {
	next http.RoundTripper
	code atomic.Int32
}

func (s *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if resp != nil {
		s.code.Store(int32(resp.StatusCode))
	}
	return resp, err
}
