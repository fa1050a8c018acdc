package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRoutes(t *testing.T) {
	r, err := ParseRoute("443=host.docker.internal:20345")
	if err != nil || r != (Route{Listen: 443, To: "host.docker.internal:20345"}) {
		t.Fatalf("got %+v %v", r, err)
	}
	if got := Args([]Route{r, {Listen: 5432, To: "10.0.0.5:21000"}}); !reflect.DeepEqual(got, []string{"relay", "443=host.docker.internal:20345", "5432=10.0.0.5:21000"}) {
		t.Errorf("Args: %v", got)
	}
	for _, bad := range []string{"443", "x=h:1", "0=h:1", "443=h", "443=:20345", "443=h:0", "443=h:http", "70000=h:1"} {
		if _, err := ParseRoute(bad); err == nil || !strings.Contains(err.Error(), "LISTEN=HOST:PORT") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if err := Serve(context.Background(), nil, t.Logf); err == nil {
		t.Error("Serve without routes must fail")
	}
}

// relayTo starts a relay in front of backend and returns its address; logs
// collects what it reports.
func relayTo(t *testing.T, backend string) (addr string, logs func() string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, format)
		for _, a := range args {
			if e, ok := a.(error); ok {
				lines = append(lines, e.Error())
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { relayAll(ctx, []net.Listener{ln}, []string{backend}, logf); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
}

// backend serves one connection with handle.
func backend(t *testing.T, handle func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		handle(c.(*net.TCPConn))
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// Bytes pass both ways, and an end of stream passes as a half close: the
// backend reads the whole request (to EOF) before it answers, and the client
// reads the whole answer, then EOF.
func TestRelayPassesBytesAndHalfCloses(t *testing.T) {
	request := strings.Repeat("ciphertext ", 10000)
	addr, _ := relayTo(t, backend(t, func(c *net.TCPConn) {
		defer c.Close()
		got, err := io.ReadAll(c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "got %d bytes", len(got))
		c.CloseWrite()
	}))
	c := dial(t, addr)
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	if want := fmt.Sprintf("got %d bytes", len(request)); string(answer) != want {
		t.Fatalf("answer %q, want %q", answer, want)
	}
}

// A backend that resets its connection (devmtls does, when the pod side
// broke) resets the caller's too: no clean end that would pass a truncated
// answer for a whole one.
func TestRelayPassesResets(t *testing.T) {
	addr, _ := relayTo(t, backend(t, func(c *net.TCPConn) {
		c.Write([]byte("partial"))
		time.Sleep(50 * time.Millisecond)
		c.SetLinger(0)
		c.Close()
	}))
	c := dial(t, addr)
	buf := make([]byte, len("partial"))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(buf)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the backend's reset the caller read %v, want a reset", err)
	}
}

// Nothing listening on the host side: the caller's connection ends at once,
// and the relay says where it could not reach.
func TestRelayHostDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	addr, logs := relayTo(t, down)
	c := dial(t, addr)
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a relay whose host side is down", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs(), "reach the devmtls forward at "+down) {
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not say why: %q", logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeStopsAndReportsBusyPorts(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	err = Serve(context.Background(), []Route{{Listen: port, To: "127.0.0.1:1"}}, t.Logf)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("a busy port: %v", err)
	}
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, []Route{{Listen: port, To: "127.0.0.1:1"}}, t.Logf) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
