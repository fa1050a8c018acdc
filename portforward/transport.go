package portforward

import (
	"fmt"
	"net/http"
	"strings"

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

// dialPod opens one upgraded stream connection to a pod's portforward
// subresource; callers create a data+error stream pair per local connection.
func dialPod(cfg *rest.Config, client kubernetes.Interface, namespace, pod string, t Transport) (httpstream.Connection, error) {
	u := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	var dialer httpstream.Dialer = spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	if t != TransportSPDY {
		ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg)
		if err != nil {
			return nil, err
		}
		if t == TransportWebSocket {
			dialer = ws
		} else {
			dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, func(err error) bool {
				return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
			})
		}
	}
	conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		if apierrors.IsForbidden(err) || strings.Contains(strings.ToLower(err.Error()), "forbidden") {
			return nil, forbidden(err, "create", "pods/portforward", namespace)
		}
		return nil, fmt.Errorf("open a port-forward stream to pod %s/%s: %w", namespace, pod, err)
	}
	return conn, nil
}
