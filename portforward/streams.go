package portforward

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/streaming/pkg/httpstream"
)

// podConn is one connection to the pod: a data+error stream pair on a
// session and the mTLS session over the data stream.
type podConn struct {
	sess    *session
	data    httpstream.Stream
	errs    httpstream.Stream
	reader  *streamConn // the data stream as crypto/tls reads it
	stream  *batchConn  // what crypto/tls writes to: batches into the data stream
	tls     *tls.Conn
	kubelet *errorStream
}

// close ends the connection before any data went through: the pod sees the
// stream end.
func (p *podConn) close() {
	p.data.Reset()
	p.done()
}

// done gives the streams and the session back.
func (p *podConn) done() {
	p.sess.conn.RemoveStreams(p.data, p.errs)
	p.sess.release()
}

// dialPod opens a connection to the pod behind t's port p: the target's
// session (re-resolved and redialled once when its stream connection broke),
// a stream pair, and mTLS with the cluster credentials (after SSLRequest for
// PostgreSQL).
func (f *Forwarder) dialPod(ctx context.Context, t *target, p PortSpec) (*podConn, error) {
	for attempt := 0; ; attempt++ {
		sess, err := t.session(ctx)
		if err != nil {
			return nil, err
		}
		creds, err := sess.clusterCredentials(ctx)
		if err != nil {
			sess.release()
			return nil, err
		}
		data, errs, err := sess.open(p)
		if err != nil {
			sess.invalidate()
			sess.release()
			if attempt == 0 {
				continue
			}
			return nil, err
		}
		pc, err := f.handshakePod(ctx, sess, creds, data, errs)
		if err != nil {
			sess.conn.RemoveStreams(data, errs)
			sess.release()
			return nil, err
		}
		return pc, nil
	}
}

func (f *Forwarder) handshakePod(ctx context.Context, s *session, creds *ClusterCredentials, data, errs httpstream.Stream) (*podConn, error) {
	kubelet := readErrorStream(errs, data, s.pod.Name)
	// The pod's identity is the TLS session cache key (ServerName is often empty).
	reader := &streamConn{Stream: data, remote: streamAddr(s.pod.Namespace + "/" + s.pod.Name + ":" + string(s.pod.UID))}
	stream := &batchConn{Conn: reader}
	if f.opts.Protocol == ProtocolPostgres {
		if err := requestPostgresTLS(stream); err != nil {
			data.Reset()
			return nil, kubelet.explain(fmt.Errorf("pod %s: %w", s.pod.Name, err))
		}
	}
	remote := tls.Client(stream, creds.ClientConfig(s.serverName))
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err := remote.HandshakeContext(hctx)
	cancel()
	if err != nil {
		data.Reset()
		return nil, kubelet.explain(fmt.Errorf("mTLS handshake with pod %s (credentials from %s): %v", s.pod.Name, creds.origin, err))
	}
	return &podConn{sess: s, data: data, errs: errs, reader: reader, stream: stream, tls: remote, kubelet: kubelet}, nil
}

// open creates the error and data stream pair for one local connection. The
// kubelet pairs them by request ID in whatever order they arrive, and each
// creation waits for the kubelet's reply, so both are created at once: one
// round trip through the API server instead of two.
func (s *session) open(p PortSpec) (httpstream.Stream, httpstream.Stream, error) {
	port := s.ports[p.Remote]
	id := strconv.FormatInt(s.requestID.Add(1), 10)
	header := func(kind string) http.Header {
		h := http.Header{}
		h.Set(corev1.StreamType, kind)
		h.Set(corev1.PortHeader, strconv.Itoa(int(port)))
		h.Set(corev1.PortForwardRequestIDHeader, id)
		return h
	}
	type created struct {
		stream httpstream.Stream
		err    error
	}
	errc := make(chan created, 1)
	go func() {
		st, err := s.conn.CreateStream(header(corev1.StreamTypeError))
		errc <- created{st, err}
	}()
	data, dataErr := s.conn.CreateStream(header(corev1.StreamTypeData))
	e := <-errc
	if e.err != nil || dataErr != nil {
		for _, st := range []httpstream.Stream{e.stream, data} {
			if st != nil {
				st.Reset()
				s.conn.RemoveStreams(st)
			}
		}
		if e.err != nil {
			return nil, nil, fmt.Errorf("open the error stream to pod %s: %w", s.pod.Name, e.err)
		}
		return nil, nil, fmt.Errorf("open the data stream to pod %s: %w", s.pod.Name, dataErr)
	}
	// Nothing is ever written to the error stream.
	e.stream.Close()
	return data, e.stream, nil
}

// errorStream is the kubelet's side of a connection's error stream: the
// kubelet writes there why forwarding failed (the port did not answer, the
// pod's connection broke) and closes it once the connection is over.
type errorStream struct {
	done chan struct{}
	err  error // set before done is closed
}

// readErrorStream reads the kubelet's error stream for the data stream of a
// connection to pod. A message there means the kubelet gave up on the
// connection, whatever the data stream still does, so the data stream is
// reset: the connection then ends as broken (see pipe).
func readErrorStream(errs, data httpstream.Stream, pod string) *errorStream {
	e := &errorStream{done: make(chan struct{})}
	go func() {
		defer close(e.done)
		msg, err := io.ReadAll(errs)
		if err == nil && len(msg) > 0 {
			e.err = fmt.Errorf("pod %s: %s", pod, strings.TrimSpace(string(msg)))
			data.Reset()
		}
	}()
	return e
}

// explain prefers the kubelet's explanation, if it comes within a second,
// over ours.
func (e *errorStream) explain(ours error) error {
	select {
	case <-e.done:
		if e.err != nil {
			return e.err
		}
	case <-time.After(time.Second):
	}
	return ours
}

// wait returns the kubelet's explanation once the stream is closed.
func (e *errorStream) wait() error {
	<-e.done
	return e.err
}

// forwardCancel relays a PostgreSQL CancelRequest. PostgreSQL reads it before
// any TLS, so it goes over its own stream in plain text; it carries only the
// backend's cancel key.
func (f *Forwarder) forwardCancel(ctx context.Context, t *target, p PortSpec, packet []byte) {
	s, err := t.session(ctx)
	if err != nil {
		t.report(err)
		return
	}
	defer s.release()
	data, errStream, err := s.open(p)
	if err != nil {
		s.invalidate()
		t.report(err)
		return
	}
	defer s.conn.RemoveStreams(data, errStream)
	data.Write(packet)
	data.Close()
	io.Copy(io.Discard, data)
}

// streamConn makes a stream usable as a net.Conn for crypto/tls. Streams have
// no deadlines; the handshake is bounded by HandshakeContext instead.
//
// It also notes when reading the stream ended. crypto/tls reports io.EOF both
// after the peer's close_notify and when the stream just ends at a record
// boundary; only in the second case has it read the end of the stream, and
// that is the difference between a pod that finished and one that went away.
type streamConn struct {
	httpstream.Stream
	remote streamAddr
	ended  atomic.Bool
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	if n == 0 && err != nil {
		c.ended.Store(true)
	}
	return n, err
}

func (*streamConn) LocalAddr() net.Addr                { return streamAddr("devmtls") }
func (c *streamConn) RemoteAddr() net.Addr             { return c.remote }
func (*streamConn) SetDeadline(t time.Time) error      { return nil }
func (*streamConn) SetReadDeadline(t time.Time) error  { return nil }
func (*streamConn) SetWriteDeadline(t time.Time) error { return nil }

type streamAddr string

func (streamAddr) Network() string  { return "portforward" }
func (a streamAddr) String() string { return string(a) }
