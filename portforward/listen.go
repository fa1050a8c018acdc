package portforward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// listener is one local socket for one port of one target.
type listener struct {
	ln     net.Listener
	target *target
	port   PortSpec
	addr   string
}

// PortInUseError says a local port a forward needs is taken. It unwraps to
// the listen error, so errors.Is(err, syscall.EADDRINUSE) holds too.
type PortInUseError struct {
	Port   int    // the local port asked for
	Remote string // the remote port it forwards to, for the suggestion
	Err    error
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("local port %d is already in use: pick another with LOCAL:%s, or :%s for a free one", e.Port, e.Remote, e.Remote)
}

func (e *PortInUseError) Unwrap() error { return e.Err }

// PrivilegedPortError says a local port is below the first port an
// unprivileged user may bind. It unwraps to the listen error (EACCES).
type PrivilegedPortError struct {
	Port   int    // the local port asked for
	Remote string // the remote port it forwards to, for the suggestion
	// FirstUnprivileged is the lowest port anyone may bind
	// (net.ipv4.ip_unprivileged_port_start on Linux).
	FirstUnprivileged int
	Err               error
}

func (e *PrivilegedPortError) Error() string {
	return fmt.Sprintf("local port %d needs privileges: ports below %d (net.ipv4.ip_unprivileged_port_start) need root or CAP_NET_BIND_SERVICE; use %d:%s for a port that does not, or :%s for a free one",
		e.Port, e.FirstUnprivileged, e.suggestion(), e.Remote, e.Remote)
}

func (e *PrivilegedPortError) Unwrap() error { return e.Err }

// suggestion is a port anyone may bind that still recalls the one asked for:
// 80 → 8080, 443 → 8443, as developers tend to pick by hand.
func (e *PrivilegedPortError) suggestion() int {
	if p := e.Port + 8000; p >= e.FirstUnprivileged && p <= 65535 {
		return p
	}
	return e.FirstUnprivileged
}

// listen binds every address for one port; a random local port is chosen once
// and reused for the other addresses, as kubectl does.
func (f *Forwarder) listen(t *target, p PortSpec) error {
	port := p.Local
	bound := 0
	var firstErr error
	addrs := f.opts.Addresses
	if p.Address != "" {
		addrs = []string{p.Address}
	}
	for _, a := range expandAddresses(addrs) {
		ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if port == 0 {
			port = ln.Addr().(*net.TCPAddr).Port
		}
		bound++
		l := &listener{ln: ln, target: t, port: p, addr: ln.Addr().String()}
		f.listeners = append(f.listeners, l)
		fmt.Fprintf(f.opts.Out, "Forwarding from %s -> %s %s (%s)\n", l.addr, t.spec, p.Remote, f.describeSecurity())
		f.emit(Event{Kind: EventListening, Target: t.spec.String(), Local: l.addr, Remote: p.Remote, Message: f.describeSecurity()})
	}
	if bound == 0 {
		switch {
		case errors.Is(firstErr, syscall.EADDRINUSE):
			return &PortInUseError{Port: p.Local, Remote: p.Remote, Err: firstErr}
		case errors.Is(firstErr, syscall.EACCES) && p.Local > 0 && p.Local < firstUnprivilegedPort():
			return &PrivilegedPortError{Port: p.Local, Remote: p.Remote, FirstUnprivileged: firstUnprivilegedPort(), Err: firstErr}
		}
		return fmt.Errorf("listen for %s %s: %w", t.spec, p, firstErr)
	}
	return nil
}

func (f *Forwarder) describeSecurity() string {
	local := "local mTLS"
	if f.opts.Local == LocalPlain {
		local = "local plain TCP"
	}
	proto := ""
	if f.opts.Protocol == ProtocolPostgres {
		proto = ", PostgreSQL SSLRequest"
	}
	return local + ", mTLS to the pod" + proto
}

func (f *Forwarder) acceptLoop(ctx context.Context, l *listener) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			f.opts.Logf("%s: accept on %s: %v", l.target.spec, l.addr, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !f.track(conn) {
			conn.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(conn)
			f.handle(ctx, l, conn)
		}()
	}
}

// track registers a local connection for Close; once Close has begun it
// refuses, since Close would not see the connection any more.
func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done:
		return false
	default:
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}
