package kubelet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/proxy"
	translator "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// PortForwardStats is what /testkubelet/portforward reports: how many
// port-forward requests reached the kubelet over each transport.
type PortForwardStats struct {
	// SPDY counts plain SPDY upgrades: kubectl's SPDY client, or a WebSocket
	// tunnel the API server translated to SPDY itself.
	SPDY int64 `json:"spdy"`
	// WebSocket counts v4.channel.k8s.io WebSocket requests.
	WebSocket int64 `json:"websocket"`
	// WebSocketTunnel counts SPDY-over-WebSocket tunnels the API server
	// passed through because the node declared ExtendWebSocketsToKubelet.
	WebSocketTunnel int64 `json:"websocketTunnel"`
}

// StatsPath is where the kubelet serves PortForwardStats; through the API
// server it is /api/v1/nodes/NODE/proxy/testkubelet/portforward.
const StatsPath = "/testkubelet/portforward"

// routes is the kubelet API: the paths the API server proxies to.
func (k *Kubelet) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/portForward/{namespace}/{pod}", k.servePortForward)
	mux.HandleFunc("/portForward/{namespace}/{pod}/{uid}", k.servePortForward)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveContainerLogs)
	mux.HandleFunc("GET "+StatsPath, k.serveStats)
	for _, p := range []string{"/exec/", "/attach/", "/run/", "/cri/"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the test kubelet runs pods as host processes and does not support exec, attach or run", http.StatusNotImplemented)
		})
	}
	return k.authorize(mux)
}

// authorize admits only the clients named in AllowedClients (the API
// server's kubelet client certificate); the TLS layer already verified the
// certificate chains to the client CA.
func (k *Kubelet) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "client certificate required", http.StatusUnauthorized)
			return
		}
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if len(k.cfg.AllowedClients) > 0 && !slices.Contains(k.cfg.AllowedClients, cn) {
			http.Error(w, fmt.Sprintf("user %q is not allowed to use the kubelet API", cn), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// servePortForward mirrors the kubelet's getPortForward: it asks the
// runtime's streaming server for a URL and proxies the upgrade there with
// the upgrade-aware proxy; a WebSocket tunnel (only offered when the node
// declares ExtendWebSocketsToKubelet) is unwrapped by the same tunneling
// handler the kubelet uses.
func (k *Kubelet) servePortForward(w http.ResponseWriter, r *http.Request) {
	pw := k.workerByName(r.PathValue("namespace"), r.PathValue("pod"))
	if pw == nil {
		http.Error(w, "pod does not exist", http.StatusNotFound)
		return
	}
	if uid := r.PathValue("uid"); uid != "" && uid != string(pw.uid) {
		http.Error(w, "pod not found", http.StatusNotFound)
		return
	}
	tunnel := k.cfg.DeclareWebSocketTunnel && wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
	var ports []int32
	switch {
	case tunnel:
		k.stats.WebSocketTunnel.Add(1)
	case wsstream.IsWebSocketRequest(r):
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ports = opts.Ports
		k.stats.WebSocket.Add(1)
	default:
		k.stats.SPDY.Add(1)
	}
	u, err := k.streams.portForwardURL(string(pw.uid), ports)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var h http.Handler = proxy.NewUpgradeAwareHandler(u, nil, false, true, errorResponder{k.log})
	if tunnel {
		h = translator.NewTunnelingHandler(h)
	}
	h.ServeHTTP(w, r)
}

type errorResponder struct{ log *log.Logger }

func (e errorResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	e.log.Printf("port-forward proxy: %v", err)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func (k *Kubelet) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(PortForwardStats{
		SPDY:            k.stats.SPDY.Load(),
		WebSocket:       k.stats.WebSocket.Load(),
		WebSocketTunnel: k.stats.WebSocketTunnel.Load(),
	})
}

// serveContainerLogs backs `kubectl logs`: follow, previous, tailLines and
// limitBytes are honoured; timestamps and sinceSeconds are not recorded.
func (k *Kubelet) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	pw := k.workerByName(r.PathValue("namespace"), r.PathValue("pod"))
	if pw == nil {
		http.Error(w, "pod does not exist", http.StatusNotFound)
		return
	}
	c := pw.containerByName(r.PathValue("container"))
	if c == nil {
		http.Error(w, fmt.Sprintf("container %q is not valid for pod %q", r.PathValue("container"), r.PathValue("pod")), http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	follow := q.Get("follow") == "true"
	tail, _ := strconv.Atoi(q.Get("tailLines"))
	limit, _ := strconv.ParseInt(q.Get("limitBytes"), 10, 64)

	c.mu.Lock()
	restarts, runs := c.restarts, c.runs
	waiting := c.state.Waiting
	c.mu.Unlock()
	idx := restarts
	if q.Get("previous") == "true" {
		if restarts == 0 {
			http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", c.spec.Name, pw.currentPod().Name), http.StatusBadRequest)
			return
		}
		idx, follow = restarts-1, false
	}
	f, err := os.Open(c.logPath(idx))
	if errors.Is(err, os.ErrNotExist) && waiting != nil {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: %s", c.spec.Name, pw.currentPod().Name, waiting.Reason), http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()

	w.Header().Set("Content-Type", "text/plain")
	out := io.Writer(w)
	if limit > 0 {
		out = &limitWriter{w: w, n: limit}
	}
	if tail > 0 {
		b, _ := io.ReadAll(f)
		b = lastLines(b, tail)
		if _, err := out.Write(b); err != nil {
			return
		}
	}
	ended := c.runEnded(runs)
	flusher, _ := w.(http.Flusher)
	for {
		n, err := io.Copy(out, f)
		if err != nil {
			return
		}
		if n > 0 && flusher != nil {
			flusher.Flush()
		}
		if !follow {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-ended:
			_, _ = io.Copy(out, f)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) []byte {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:end], '\n')
		if j < 0 {
			return b
		}
		end = j
	}
	return b[end+1:]
}

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	return n, err
}
