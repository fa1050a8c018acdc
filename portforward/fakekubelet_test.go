package portforward

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/streaming/pkg/httpstream"
)

// fakeKubelet stands in for the API server and the kubelet behind it, because
// no kubelet runs in a unit test (test/e2e drives the real ones). It is the
// forwarder's PodDialer: each DialPod yields a fakeConn whose streams the
// "kubelet" pairs by request ID and connects to the pod's port — a real TCP
// listener on loopback, such as tlsEchoPod — so everything above the stream
// connection runs for real.
//
// A fakeConn behaves like k8s.io/streaming's SPDY connection (over SPDY or
// WebSocket) where the forwarder depends on it:
//   - CreateStream returns once the kubelet holds the stream (its reply);
//     the kubelet starts forwarding once both streams of a request ID exist,
//     in whichever order they came;
//   - a stream's Close ends its write side (FIN); Reset ends both sides, and
//     reading a reset stream returns io.EOF, as spdystream's Read does;
//   - Close resets every stream not given up with RemoveStreams, closes
//     CloseChan, and ends every other stream too, as the spdystream
//     connection underneath goes away; writes then fail;
//   - the kubelet writes why forwarding failed on the error stream, then
//     closes the error stream and then the data stream, in the order of the
//     CRI streaming server (k8s.io/kubelet's portforward httpStreamHandler).
type fakeKubelet struct {
	mu sync.Mutex
	// ports maps "pod:containerPort" to the address serving it.
	ports   map[string]string
	dials   map[string]int
	conns   []*fakeConn
	dialErr error
}

func newFakeKubelet() *fakeKubelet {
	return &fakeKubelet{ports: map[string]string{}, dials: map[string]int{}}
}

// serve makes addr the pod's containerPort.
func (k *fakeKubelet) serve(pod string, containerPort int, addr string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ports[pod+":"+strconv.Itoa(containerPort)] = addr
}

func (k *fakeKubelet) DialPod(namespace, pod string) (httpstream.Connection, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dialErr != nil {
		return nil, k.dialErr
	}
	k.dials[pod]++
	c := &fakeConn{kubelet: k, pod: pod, registered: map[uint32]*fakeStream{}, pairs: map[string]*fakePair{},
		closed: make(chan bool)}
	k.conns = append(k.conns, c)
	return c, nil
}

// dialsTo counts the stream connections opened to a pod.
func (k *fakeKubelet) dialsTo(pod string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dials[pod]
}

// connsTo returns the stream connections opened to a pod, oldest first.
func (k *fakeKubelet) connsTo(pod string) []*fakeConn {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*fakeConn
	for _, c := range k.conns {
		if c.pod == pod {
			out = append(out, c)
		}
	}
	return out
}

// resetDataStreams resets, from the kubelet's side, the data streams of the
// connections to pod, as a kubelet whose copy broke may.
func (k *fakeKubelet) resetDataStreams(pod string) {
	for _, s := range k.remoteStreams(pod, corev1.StreamTypeData) {
		s.Reset()
	}
}

// reportOnErrorStreams writes msg on the error streams of the connections to
// pod and closes them, leaving the data streams as they are.
func (k *fakeKubelet) reportOnErrorStreams(pod, msg string) {
	for _, s := range k.remoteStreams(pod, corev1.StreamTypeError) {
		io.WriteString(s, msg)
		s.Close()
	}
}

// remoteStreams returns the kubelet's ends of the streams of one type to pod.
func (k *fakeKubelet) remoteStreams(pod, streamType string) []*fakeStream {
	var out []*fakeStream
	for _, c := range k.connsTo(pod) {
		c.mu.Lock()
		for _, s := range c.remote {
			if s.headers.Get(corev1.StreamType) == streamType {
				out = append(out, s)
			}
		}
		c.mu.Unlock()
	}
	return out
}

// fakeConn is one upgraded stream connection; see fakeKubelet.
type fakeConn struct {
	kubelet *fakeKubelet
	pod     string

	mu         sync.Mutex
	nextID     uint32
	registered map[uint32]*fakeStream // the client's streams not yet removed
	all        []*fakeStream          // every stream end, both sides
	remote     []*fakeStream          // the kubelet's ends
	pairs      map[string]*fakePair
	isClosed   bool
	closed     chan bool
}

type fakePair struct{ data, errs *fakeStream }

func (c *fakeConn) CreateStream(headers http.Header) (httpstream.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return nil, errors.New("fake connection closed")
	}
	c.nextID += 2
	toKubelet, toClient := newHalfPipe(), newHalfPipe()
	local := &fakeStream{conn: c, id: c.nextID, headers: headers, in: toClient, out: toKubelet}
	remote := &fakeStream{conn: c, id: c.nextID, headers: headers, in: toKubelet, out: toClient}
	c.registered[local.id] = local
	c.all = append(c.all, local, remote)
	c.remote = append(c.remote, remote)
	id := headers.Get(corev1.PortForwardRequestIDHeader)
	p := c.pairs[id]
	if p == nil {
		p = &fakePair{}
		c.pairs[id] = p
	}
	switch headers.Get(corev1.StreamType) {
	case corev1.StreamTypeData:
		p.data = remote
	case corev1.StreamTypeError:
		p.errs = remote
	}
	if p.data != nil && p.errs != nil {
		delete(c.pairs, id)
		go c.forward(p)
	}
	return local, nil
}

// forward is the kubelet's port forwarding for one stream pair, as the CRI
// streaming server and test/cluster's kubelet do it: each direction closed on
// its own, done when the pod's side is done sending.
func (c *fakeConn) forward(p *fakePair) {
	defer p.data.Close()
	defer p.errs.Close()
	port := p.data.headers.Get(corev1.PortHeader)
	c.kubelet.mu.Lock()
	addr, ok := c.kubelet.ports[c.pod+":"+port]
	c.kubelet.mu.Unlock()
	if !ok {
		fmt.Fprintf(p.errs, "error forwarding port %s to pod %s: nothing listens on it", port, c.pod)
		return
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintf(p.errs, "error forwarding port %s to pod %s: %v", port, c.pod, err)
		return
	}
	defer conn.Close()
	toPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, p.data)
		if err == nil {
			err = conn.(*net.TCPConn).CloseWrite()
		}
		toPod <- err
	}()
	_, err = io.Copy(p.data, conn)
	if err != nil {
		fmt.Fprintf(p.errs, "error forwarding port %s to pod %s: %v", port, c.pod, err)
	}
}

func (c *fakeConn) Close() error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return nil
	}
	c.isClosed = true
	all := c.all
	c.registered = map[uint32]*fakeStream{}
	c.mu.Unlock()
	for _, s := range all {
		s.in.reset()
		s.out.reset()
	}
	close(c.closed)
	return nil
}

func (c *fakeConn) CloseChan() <-chan bool { return c.closed }

func (c *fakeConn) SetIdleTimeout(timeout time.Duration) {}

func (c *fakeConn) RemoveStreams(streams ...httpstream.Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range streams {
		if s != nil {
			delete(c.registered, s.Identifier())
		}
	}
}

// isDone reports whether Close ran.
func (c *fakeConn) isDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isClosed
}

// openStreams counts the client's streams not yet removed.
func (c *fakeConn) openStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.registered)
}

// fakeStream is one end of a stream: it reads what the other end writes.
type fakeStream struct {
	conn    *fakeConn
	id      uint32
	headers http.Header
	in, out *halfPipe
}

func (s *fakeStream) Read(p []byte) (int, error) { return s.in.read(p) }

func (s *fakeStream) Write(p []byte) (int, error) {
	s.conn.mu.Lock()
	closed := s.conn.isClosed
	s.conn.mu.Unlock()
	if closed {
		return 0, errors.New("fake connection closed")
	}
	return s.out.write(p)
}

func (s *fakeStream) Close() error {
	s.out.finish()
	return nil
}

func (s *fakeStream) Reset() error {
	s.in.reset()
	s.out.reset()
	return nil
}

func (s *fakeStream) Headers() http.Header { return s.headers }
func (s *fakeStream) Identifier() uint32   { return s.id }

// halfPipe is one direction of a stream: bounded, so a reader that falls
// behind holds its writer back, as a connection's flow does.
type halfPipe struct {
	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte
	finished bool // FIN: the writer is done
	broken   bool // RST: both ends are gone
}

const halfPipeSize = 256 << 10

func newHalfPipe() *halfPipe {
	h := &halfPipe{}
	h.cond.L = &h.mu
	return h
}

func (h *halfPipe) write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished && !h.broken {
		return 0, errors.New("write after close")
	}
	written := 0
	for len(p) > 0 {
		for len(h.buf) >= halfPipeSize && !h.broken {
			h.cond.Wait()
		}
		if h.broken {
			// spdystream sends frames for a reset stream, and its peer
			// drops them: the write is not refused.
			return written + len(p), nil
		}
		n := min(len(p), halfPipeSize-len(h.buf))
		h.buf = append(h.buf, p[:n]...)
		p, written = p[n:], written+n
		h.cond.Broadcast()
	}
	return written, nil
}

func (h *halfPipe) read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.buf) == 0 && !h.finished && !h.broken {
		h.cond.Wait()
	}
	if h.broken || len(h.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	h.cond.Broadcast()
	return n, nil
}

func (h *halfPipe) finish() {
	h.mu.Lock()
	h.finished = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *halfPipe) reset() {
	h.mu.Lock()
	h.broken = true
	h.buf = nil
	h.cond.Broadcast()
	h.mu.Unlock()
}
