package portforward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// handle serves one local connection end to end.
func (f *Forwarder) handle(ctx context.Context, l *listener, raw net.Conn) {
	t := l.target
	t.active.Add(1)
	t.total.Add(1)
	defer t.active.Add(-1)

	// For plain TCP the pod side is opened while the local client completes
	// its handshake: the two round trips overlap, and they are most of a new
	// connection's latency. A local client that then fails its handshake
	// leaves the pod a connection that ends without data, as a client of
	// kubectl port-forward would. PostgreSQL keeps the order, since its
	// opening decides whether a pod connection is wanted (CancelRequest).
	type dialed struct {
		pc  *podConn
		err error
	}
	var early chan dialed
	if f.opts.Protocol == ProtocolTCP {
		early = make(chan dialed, 1)
		go func() {
			pc, err := f.dialPod(ctx, t, l.port)
			early <- dialed{pc, err}
		}()
	}
	local, pending, err := f.acceptLocal(raw)
	if err != nil {
		if early != nil {
			go func() {
				if d := <-early; d.pc != nil {
					d.pc.close()
				} else {
					t.report(d.err)
				}
			}()
		}
		// A client that fails its own handshake is the client's problem; say so
		// once per cause without touching the target's health.
		t.reportLocal(fmt.Errorf("local client %s: %v", raw.RemoteAddr(), err))
		return
	}
	if pending.cancel != nil {
		f.forwardCancel(ctx, t, l.port, pending.cancel)
		local.closeClean()
		return
	}
	var d dialed
	if early != nil {
		d = <-early
	} else {
		d.pc, d.err = f.dialPod(ctx, t, l.port)
	}
	if d.err != nil {
		t.report(d.err)
		// The client's handshake with devmtls succeeded, so a clean close
		// would read as an empty answer: say why where the protocol can, and
		// end the connection as broken.
		refuse(local, f.opts.Protocol, d.err)
		local.abort()
		return
	}
	pod := d.pc.sess.pod
	counter := t.opened(pod.Name)
	conn := Event{Target: t.spec.String(), Pod: pod.Name, Local: l.addr, Client: raw.RemoteAddr().String(),
		Remote: fmt.Sprintf("%s/%s:%d", pod.Namespace, pod.Name, d.pc.sess.ports[l.port.Remote])}
	opened := conn
	opened.Kind = EventOpened
	f.emit(opened)
	err = f.bridge(local, d.pc, pending)
	defer counter.open.Add(-1) // after the closed event, which tests wait for
	closed := conn
	closed.Kind, closed.BytesSent, closed.BytesReceived = EventClosed, local.sent.Load(), local.received.Load()
	if err != nil {
		closed.Error = err.Error()
	}
	f.emit(closed)
	if err != nil {
		t.report(err)
	} else {
		t.recovered()
	}
}

// pendingLocal is what the local handshake read that must still be sent on.
type pendingLocal struct {
	startup []byte // a plain PostgreSQL startup packet (local plain mode)
	cancel  []byte // a PostgreSQL CancelRequest, sent on without TLS
}

// localConn is the client's side of one forwarded connection: what the
// client speaks through (TLS, or the socket itself) and the socket under it.
type localConn struct {
	net.Conn
	raw   net.Conn
	batch *batchConn // under TLS; nil for plain
	// sent and received count the plaintext relayed to and from the pod.
	sent, received atomic.Int64
}

// closeClean ends the connection as a server that finished would: a TLS
// close_notify, then FIN.
func (c *localConn) closeClean() {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	c.raw.Close()
}

// abort ends the connection so the client cannot take it for a clean end:
// no TLS close_notify, and a TCP reset instead of FIN. A client of kubectl
// port-forward whose pod went away sees its own TLS fail the same way.
func (c *localConn) abort() {
	if tcp, ok := c.raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	c.raw.Close()
}

// acceptLocal completes the local side's handshake: TLS with the dev keypair
// (client certificate required) or nothing, with PostgreSQL's SSLRequest first
// for --protocol postgres.
func (f *Forwarder) acceptLocal(raw net.Conn) (*localConn, pendingLocal, error) {
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	defer raw.SetDeadline(time.Time{})
	plain := &localConn{Conn: raw, raw: raw}
	var pending pendingLocal
	if f.opts.Protocol == ProtocolPostgres {
		kind, packet, err := readPostgresOpening(raw)
		if err != nil {
			return nil, pending, err
		}
		switch kind {
		case pgCancel:
			pending.cancel = packet
			return plain, pending, nil
		case pgStartup:
			if f.opts.Local == LocalTLS {
				writePostgresError(raw, "08P01", "this devmtls forward requires TLS with a client certificate: connect with sslmode=verify-full and the dev credentials (eval \"$(devmtls env)\")")
				return nil, pending, errors.New("PostgreSQL client did not ask for TLS (sslmode=disable?)")
			}
			pending.startup = packet
			return plain, pending, nil
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
				return plain, pending, nil
			}
			if _, err := raw.Write([]byte{'S'}); err != nil {
				return nil, pending, err
			}
		}
	}
	if f.opts.Local == LocalPlain {
		return plain, pending, nil
	}
	batch := newSocketBatchConn(raw)
	tc := tls.Server(batch, f.localTLS())
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		if f.opts.Protocol == ProtocolPostgres && errors.As(err, &rh) {
			// CVE-2021-23222: bytes sent after SSLRequest but before the TLS
			// handshake must never be taken as protocol data.
			return nil, pending, errors.New("received unencrypted data after the SSL request; refused")
		}
		return nil, pending, fmt.Errorf("TLS handshake: %v", err)
	}
	return &localConn{Conn: tc, raw: raw, batch: batch}, pending, nil
}
