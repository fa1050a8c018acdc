package portforward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"k8s.io/streaming/pkg/httpstream"
)

// pendingLocal is what the local handshake read that must still be sent on.
type pendingLocal struct {
	startup []byte // a plain PostgreSQL startup packet (local plain mode)
	cancel  []byte // a PostgreSQL CancelRequest, sent on without TLS
}

// acceptLocal completes the local side's handshake: TLS with the dev keypair
// (client certificate required) or nothing, with PostgreSQL's SSLRequest first
// for --protocol postgres.
func (f *Forwarder) acceptLocal(raw net.Conn) (net.Conn, pendingLocal, error) {
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	defer raw.SetDeadline(time.Time{})
	var pending pendingLocal
	if f.opts.Protocol == ProtocolPostgres {
		kind, packet, err := readPostgresOpening(raw)
		if err != nil {
			return nil, pending, err
		}
		switch kind {
		case pgCancel:
			pending.cancel = packet
			return raw, pending, nil
		case pgStartup:
			if f.opts.Local == LocalTLS {
				writePostgresError(raw, "08P01", "this devmtls forward requires TLS with a client certificate: connect with sslmode=verify-full and the dev credentials (eval \"$(devmtls env)\")")
				return nil, pending, errors.New("PostgreSQL client did not ask for TLS (sslmode=disable?)")
			}
			pending.startup = packet
			return raw, pending, nil
		case pgSSL:
			if f.opts.Local == LocalPlain {
				// The client wants TLS but this listener is plain: say no, as a
				// server with ssl=off does, and let it continue in plain text.
				if _, err := raw.Write([]byte{'N'}); err != nil {
					return nil, pending, err
				}
				kind, packet, err = readPostgresOpening(raw)
				if err != nil {
					return nil, pending, err
				}
				if kind == pgCancel {
					pending.cancel = packet
				} else if kind == pgStartup {
					pending.startup = packet
				} else {
					return nil, pending, errors.New("PostgreSQL client repeated its SSLRequest")
				}
				return raw, pending, nil
			}
			if _, err := raw.Write([]byte{'S'}); err != nil {
				return nil, pending, err
			}
		}
	}
	if f.opts.Local == LocalPlain {
		return raw, pending, nil
	}
	tc := tls.Server(newSocketBatchConn(raw), f.opts.LocalTLS)
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		if f.opts.Protocol == ProtocolPostgres && errors.As(err, &rh) {
			// CVE-2021-23222: bytes sent after SSLRequest but before the TLS
			// handshake must never be taken as protocol data.
			return nil, pending, errors.New("received unencrypted data after the SSL request; refused")
		}
		return nil, pending, fmt.Errorf("TLS handshake: %v", err)
	}
	return tc, pending, nil
}

// podConn is one connection to the pod: a data+error stream pair on a
// session and the mTLS session over the data stream.
type podConn struct {
	sess   *session
	data   httpstream.Stream
	errs   httpstream.Stream
	stream *batchConn
	tls    *tls.Conn
	errc   <-chan error // the kubelet's explanation, if it gives one
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
		data, errs, err := sess.open(p)
		if err != nil {
			sess.invalidate()
			sess.release()
			if attempt == 0 {
				continue
			}
			return nil, err
		}
		pc, err := f.handshakePod(ctx, sess, data, errs)
		if err != nil {
			sess.conn.RemoveStreams(data, errs)
			sess.release()
			return nil, err
		}
		return pc, nil
	}
}

func (f *Forwarder) handshakePod(ctx context.Context, s *session, data, errs httpstream.Stream) (*podConn, error) {
	errc := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(errs)
		if err == nil && len(msg) > 0 {
			errc <- fmt.Errorf("pod %s: %s", s.pod.Name, strings.TrimSpace(string(msg)))
			return
		}
		errc <- nil
	}()
	// The pod's identity is the TLS session cache key (ServerName is often empty).
	stream := &batchConn{Conn: streamConn{Stream: data, remote: streamAddr(s.pod.Namespace + "/" + s.pod.Name + ":" + string(s.pod.UID))}}
	if f.opts.Protocol == ProtocolPostgres {
		if err := requestPostgresTLS(stream); err != nil {
			data.Reset()
			return nil, f.streamError(errc, fmt.Errorf("pod %s: %w", s.pod.Name, err))
		}
	}
	remote := tls.Client(stream, s.creds.ClientConfig(s.serverName))
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err := remote.HandshakeContext(hctx)
	cancel()
	if err != nil {
		data.Reset()
		return nil, f.streamError(errc, fmt.Errorf("mTLS handshake with pod %s (credentials from secret %s): %v", s.pod.Name, s.creds.Source, err))
	}
	return &podConn{sess: s, data: data, errs: errs, stream: stream, tls: remote, errc: errc}, nil
}

// bridge sends what the local handshake left pending, then copies bytes both
// ways with half-closes passed on until both directions end.
func (f *Forwarder) bridge(local net.Conn, pc *podConn, pending pendingLocal) error {
	defer pc.done()
	if pending.startup != nil {
		if _, err := pc.tls.Write(pending.startup); err != nil {
			pc.data.Reset()
			return f.streamError(pc.errc, err)
		}
	}
	pipe(local, pc.tls, pc.stream, pc.data, &f.budget)
	return <-pc.errc
}

// streamError prefers the kubelet's explanation (error stream) over ours.
func (f *Forwarder) streamError(errc <-chan error, ours error) error {
	select {
	case err := <-errc:
		if err != nil {
			return err
		}
	case <-time.After(time.Second):
	}
	return ours
}

// pipe copies both ways with kubectl port-forward's semantics: when the local
// client finishes sending, the pod gets a close_notify and the stream's write
// side closes, and the answer keeps flowing; when the pod side ends, the local
// connection is closed (after a close_notify), since a pod that has finished
// — or died — will not read anything more. An error either way closes both.
func pipe(local net.Conn, remote *tls.Conn, remoteBatch *batchConn, data httpstream.Stream, budget *batchBudget) {
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			local.Close()
			// A reset can wait behind a stalled write on the shared
			// connection; never let it block this connection's teardown.
			go data.Reset()
		})
	}
	localDone := make(chan struct{})
	go func() {
		defer close(localDone)
		if err := relay(remote, local, remoteBatch, budget); err != nil {
			closeAll()
			return
		}
		remote.CloseWrite()
		data.Close()
	}()
	var localBatch *batchConn
	if tc, ok := local.(*tls.Conn); ok {
		localBatch, _ = tc.NetConn().(*batchConn)
	}
	relay(local, remote, localBatch, budget)
	if tc, ok := local.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	closeAll()
	<-localDone
}

// refuse tells a local client why its connection cannot be served, where the
// protocol has a way to say so.
func refuse(local net.Conn, p Protocol, err error) {
	if p == ProtocolPostgres {
		writePostgresError(local, "08006", "devmtls forward: "+err.Error())
	}
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
type streamConn struct {
	httpstream.Stream
	remote streamAddr
}

func (streamConn) LocalAddr() net.Addr                { return streamAddr("devmtls") }
func (c streamConn) RemoteAddr() net.Addr             { return c.remote }
func (streamConn) SetDeadline(t time.Time) error      { return nil }
func (streamConn) SetReadDeadline(t time.Time) error  { return nil }
func (streamConn) SetWriteDeadline(t time.Time) error { return nil }

type streamAddr string

func (streamAddr) Network() string  { return "portforward" }
func (a streamAddr) String() string { return string(a) }
