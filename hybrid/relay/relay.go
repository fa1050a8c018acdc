// Package relay is what runs in the relay containers of a hybrid
// environment, and the image they run from.
//
// A relay listens, inside the project's container networks, on the ports a
// forward declares (pricing:443) and passes every connection's bytes to the
// devmtls listener on the host (host.docker.internal:PORT), which terminates
// the mTLS. The relay never sees a key or a plaintext byte: it is a TCP
// relay, and the only part of a hybrid environment that holds a port below
// 1024 — in its own network namespace, where that needs no privilege on the
// host. Its image is made from devmtls's own executable, so nothing is
// pulled.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Command is the hidden devmtls subcommand the relay containers run.
const Command = "relay"

// dialTimeout bounds the connection to the host listener; a caller waits no
// longer than that to learn the host side is down.
const dialTimeout = 10 * time.Second

// Route is one port a relay listens on and where it passes connections.
type Route struct {
	// Listen is the port callers dial in the container network.
	Listen int
	// To is the host listener, HOST:PORT.
	To string
}

// String is the route as the relay's command line spells it: LISTEN=HOST:PORT.
func (r Route) String() string { return strconv.Itoa(r.Listen) + "=" + r.To }

// ParseRoute reads LISTEN=HOST:PORT.
func ParseRoute(s string) (Route, error) {
	listen, to, ok := strings.Cut(s, "=")
	port, err := strconv.Atoi(listen)
	if !ok || err != nil || port < 1 || port > 65535 {
		return Route{}, fmt.Errorf("route %q: want LISTEN=HOST:PORT with LISTEN a port, e.g. 443=host.docker.internal:20345", s)
	}
	host, toPort, err := net.SplitHostPort(to)
	if n, perr := strconv.Atoi(toPort); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return Route{}, fmt.Errorf("route %q: want LISTEN=HOST:PORT, e.g. 443=host.docker.internal:20345", s)
	}
	return Route{Listen: port, To: to}, nil
}

// Args is the command line of a relay container for routes.
func Args(routes []Route) []string {
	out := []string{Command}
	for _, r := range routes {
		out = append(out, r.String())
	}
	return out
}

// Serve listens for every route until ctx ends, then closes the listeners
// and the connections it relays.
func Serve(ctx context.Context, routes []Route, logf func(string, ...any)) error {
	if len(routes) == 0 {
		return errors.New("nothing to relay: give LISTEN=HOST:PORT routes")
	}
	var lns []net.Listener
	var tos []string
	for _, r := range routes {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(r.Listen))
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return fmt.Errorf("listen on port %d: %w", r.Listen, err)
		}
		lns, tos = append(lns, ln), append(tos, r.To)
		logf("relaying port %d to %s", r.Listen, r.To)
	}
	relayAll(ctx, lns, tos, logf)
	return nil
}

// relayAll passes the connections of each listener to its destination until
// ctx ends.
func relayAll(ctx context.Context, lns []net.Listener, tos []string, logf func(string, ...any)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			accept(ctx, ln, tos[i], logf)
		}()
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
}

func accept(ctx context.Context, ln net.Listener, to string, logf func(string, ...any)) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Serve
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			if err := pass(ctx, c, to); err != nil {
				logf("%v", err)
			}
		}()
	}
}

// pass relays one connection until both directions are done. An orderly
// end of stream on one side is passed on as a half close, so TLS's
// close_notify and the FIN after it arrive as they were sent; a broken side
// (a reset: devmtls resets a connection whose pod side broke, so a truncated
// answer never passes for a whole) breaks the other side too.
func pass(ctx context.Context, c net.Conn, to string) error {
	defer c.Close()
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.DialContext(ctx, "tcp", to)
	if err != nil {
		return fmt.Errorf("connection from %s: reach the devmtls forward at %s: %w", c.RemoteAddr(), to, err)
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { reset(c); reset(up) })
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- copyHalf(up, c) }()
	go func() { errc <- copyHalf(c, up) }()
	for range 2 {
		if err := <-errc; err != nil {
			reset(c)
			reset(up)
		}
	}
	return nil
}

// copyHalf copies src to dst, then closes dst for writing.
func copyHalf(dst, src net.Conn) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return dst.Close()
}

// reset closes c with a TCP reset rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
