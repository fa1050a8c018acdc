package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// streamServer is the container runtime's streaming server, built from the
// same library containerd and CRI-O use. As with a real runtime, the
// kubelet asks it for a one-time URL and proxies the API server's upgraded
// connection there; it listens on loopback only, in plain HTTP, like
// containerd's default.
type streamServer struct {
	server streaming.Server
	http   *http.Server
}

func newStreamServer(k *Kubelet) (*streamServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = ln.Addr().String()
	// Set before NewServer so the URLs it hands out carry the real port.
	cfg.BaseURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	srv, err := streaming.NewServer(cfg, &hostRuntime{k: k})
	if err != nil {
		ln.Close()
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, ErrorLog: k.log}
	go func() { _ = hs.Serve(ln) }()
	return &streamServer{server: srv, http: hs}, nil
}

func (s *streamServer) close() { _ = s.http.Close() }

// portForwardURL registers a port-forward for the pod (by UID, which serves
// as sandbox ID) and returns where to proxy the request.
func (s *streamServer) portForwardURL(uid string, ports []int32) (*url.URL, error) {
	resp, err := s.server.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: uid, Port: ports})
	if err != nil {
		return nil, err
	}
	return url.Parse(resp.Url)
}

// hostRuntime is the streaming server's view of the "runtime": pods are
// host processes on a loopback IP, so forwarding a port is dialing it.
type hostRuntime struct{ k *Kubelet }

func errNoExec() error {
	return errors.New("the test kubelet runs pods as host processes and does not support exec or attach")
}

func (r *hostRuntime) Exec(context.Context, string, []string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommandserver.TerminalSize) error {
	return errNoExec()
}

func (r *hostRuntime) Attach(context.Context, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommandserver.TerminalSize) error {
	return errNoExec()
}

// PortForward copies between the stream and podIP:port. Each direction is
// closed on its own (TCP half-close towards the pod), so protocols that
// signal the end of a request by closing their write side keep working,
// and the forward ends when the pod side is done sending.
func (r *hostRuntime) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	w := r.k.workerByUID(sandboxID)
	if w == nil {
		return fmt.Errorf("pod sandbox %s not found", sandboxID)
	}
	ip := w.podIP()
	if ip == "" {
		return fmt.Errorf("pod sandbox %s has no IP yet", sandboxID)
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := d.DialContext(dctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
	cancel()
	if err != nil {
		return fmt.Errorf("failed to connect to %s:%d inside pod sandbox %s: %w", ip, port, sandboxID, err)
	}
	defer conn.Close()
	tcp := conn.(*net.TCPConn)

	toPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(tcp, stream)
		if err == nil {
			err = tcp.CloseWrite()
		}
		toPod <- err
	}()
	fromPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(stream, tcp)
		fromPod <- err
	}()
	for {
		select {
		case err := <-fromPod:
			return err
		case err := <-toPod:
			toPod = nil
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

var _ streaming.Runtime = (*hostRuntime)(nil)
