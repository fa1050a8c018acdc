package portforward

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestForwardAbortsWhenThePodSideBreaks: whatever breaks the pod's side in
// the middle of a download, the local client's read fails with a reset — it
// never sees the clean end (close_notify, FIN) it would take for a complete
// answer — while a download the pod finishes ends cleanly.
//
// The client only reads: a reset is reported to one system call only, and a
// client writing at the time may be the one that gets it; its read then sees
// the end of the stream, as with any TCP connection.
func TestForwardAbortsWhenThePodSideBreaks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(r *rig)
	}{
		{"stream reset by the kubelet", func(r *rig) { r.kubelet.resetDataStreams("orders-a") }},
		{"pod connection reset (error stream)", func(r *rig) { r.pods["orders-a"].kill() }},
		{"error stream alone", func(r *rig) { r.kubelet.reportOnErrorStreams("orders-a", "the kubelet gave up") }},
		{"API server connection lost", func(r *rig) { r.kubelet.connsTo("orders-a")[0].Close() }},
		{"pod deleted", func(r *rig) { r.deletePod("orders-a") }},
		{"nothing: the pod finishes", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.addPod("orders-a", true)
			size := 1 << 30
			if tc.breakIt == nil {
				size = 4 << 20
			}
			r.servePod("orders-a", source(size))
			if err := r.start(nil); err != nil {
				t.Fatal(err)
			}
			c := r.dial()
			c.SetReadDeadline(time.Now().Add(time.Minute))
			buf := make([]byte, 64<<10)
			read := 0
			for {
				n, err := c.Read(buf)
				read += n
				if tc.breakIt != nil && read >= 1<<20 {
					tc.breakIt(r)
					tc.breakIt = func(*rig) {}
				}
				if err == nil {
					continue
				}
				if tc.name == "nothing: the pod finishes" {
					if err != io.EOF || read != size {
						t.Fatalf("a complete download ended after %d of %d bytes with %v; want a clean end", read, size, err)
					}
					return
				}
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("the client's read ended after %d bytes with %v; want a connection reset\n%s", read, err, r.logs)
				}
				return
			}
		})
	}
}

// source is a pod that sends n bytes to each client, then finishes cleanly.
func source(n int) func(net.Conn, *tls.Conn) {
	return func(_ net.Conn, c *tls.Conn) {
		buf := make([]byte, 64<<10)
		rand.Read(buf)
		for left := n; left > 0; left -= len(buf) {
			if _, err := c.Write(buf[:min(left, len(buf))]); err != nil {
				return
			}
		}
		c.CloseWrite()
	}
}

// TestForwardPostgresSaysWhyBetweenMessages: in --protocol postgres, a pod
// side that breaks between two server messages gets the client an
// ErrorResponse before the reset; one that breaks inside a message only the
// reset, since anything more would be read as the rest of that message.
func TestForwardPostgresSaysWhyBetweenMessages(t *testing.T) {
	authOK := []byte{'R', 0, 0, 0, 8, 0, 0, 0, 0}
	ready := []byte{'Z', 0, 0, 0, 5, 'I'}
	partialRow := []byte{'D', 0, 0, 1, 0, 0, 1}
	for _, tc := range []struct {
		name      string
		sent      []byte
		wantError bool
	}{
		{"between messages", append(append([]byte{}, authOK...), ready...), true},
		{"inside a message", append(append([]byte{}, authOK...), partialRow...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.addPod("orders-a", true)
			sent := make(chan struct{})
			r.servePod("orders-a", func(raw net.Conn, c *tls.Conn) {
				if _, err := readStartupPacket(raw); err != nil {
					return
				}
				raw.Write([]byte{'S'})
				if _, err := readStartupPacket(c); err != nil {
					return
				}
				c.Write(tc.sent)
				close(sent)
				io.Copy(io.Discard, c)
			})
			if err := r.start(func(o *Options) { o.Protocol = ProtocolPostgres }); err != nil {
				t.Fatal(err)
			}
			raw, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.Write(pgPacket(pgSSLRequestCode))
			if _, err := io.ReadFull(raw, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			c := tls.Client(raw, r.dev.ClientConfig(r.dev.Top, "localhost"))
			c.Write(pgPacket(pgProtocol3, []byte("user\x00app\x00\x00")...))
			got := make([]byte, len(tc.sent))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, tc.sent) {
				t.Fatalf("the server's messages: %q, %v", got, err)
			}
			<-sent
			r.kubelet.resetDataStreams("orders-a")
			rest, err := io.ReadAll(c)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the client's read ended with %v; want a connection reset", err)
			}
			if !tc.wantError {
				if len(rest) != 0 {
					t.Errorf("after a broken message the client got %q; want nothing", rest)
				}
				return
			}
			if len(rest) < 5 || rest[0] != 'E' || int(binary.BigEndian.Uint32(rest[1:5]))+1 != len(rest) ||
				!bytes.Contains(rest, []byte("C08006\x00")) || !bytes.Contains(rest, []byte("lost the connection to pod orders-a")) {
				t.Errorf("after the last whole message the client got %q; want one ErrorResponse 08006 naming the pod", rest)
			}
		})
	}
}

func TestBackendFramingFollowsMessages(t *testing.T) {
	var out bytes.Buffer
	b := &backendFraming{w: &out}
	steps := []struct {
		write      []byte
		atBoundary bool
	}{
		{nil, true},
		{[]byte{'R', 0, 0}, false},       // inside a header
		{[]byte{0, 8, 0, 0, 0}, false},   // inside a body
		{[]byte{0, 'Z', 0, 0, 0}, false}, // a message ends, the next one's header begins
		{[]byte{5, 'I'}, true},
		{[]byte{'D', 0, 0, 0, 3}, false}, // a length below 4 is not PostgreSQL
		{[]byte{'Z', 0, 0, 0, 5, 'I'}, false},
	}
	for i, s := range steps {
		b.Write(s.write)
		if b.atBoundary() != s.atBoundary {
			t.Errorf("after step %d (%x): atBoundary = %v", i, s.write, !s.atBoundary)
		}
	}
	if out.Len() != 26 {
		t.Errorf("passed on %d bytes, want all 26", out.Len())
	}
}

// TestForwardPostgresCancelRequest: a CancelRequest goes to the pod as it
// came, in plain text on a stream of its own, as PostgreSQL reads it.
func TestForwardPostgresCancelRequest(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	got := make(chan []byte, 1)
	r.servePod("orders-a", func(raw net.Conn, _ *tls.Conn) {
		b, _ := io.ReadAll(raw)
		got <- b
	})
	if err := r.start(func(o *Options) { o.Protocol = ProtocolPostgres }); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel := pgPacket(pgCancelRequestCode, 0, 0, 0, 42, 1, 2, 3, 4)
	c.Write(cancel)
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("the client's connection after a CancelRequest: %q, %v; want a clean end", rest, err)
	}
	if b := <-got; !bytes.Equal(b, cancel) {
		t.Errorf("the pod got %x, want the CancelRequest %x", b, cancel)
	}
}
