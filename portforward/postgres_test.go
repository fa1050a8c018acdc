package portforward

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

func pgPacket(code uint32, extra ...byte) []byte {
	b := make([]byte, 8, 8+len(extra))
	binary.BigEndian.PutUint32(b[0:4], uint32(8+len(extra)))
	binary.BigEndian.PutUint32(b[4:8], code)
	return append(b, extra...)
}

// rw is a scripted client: reads come from in, writes are collected.
type rw struct {
	in  io.Reader
	out bytes.Buffer
}

func (r *rw) Read(p []byte) (int, error)  { return r.in.Read(p) }
func (r *rw) Write(p []byte) (int, error) { return r.out.Write(p) }

func TestReadPostgresOpening(t *testing.T) {
	startup := pgPacket(pgProtocol3, []byte("user\x00devmtls\x00\x00")...)
	cases := []struct {
		name    string
		in      []byte
		kind    pgOpening
		written string
		err     string
	}{
		{"ssl", pgPacket(pgSSLRequestCode), pgSSL, "", ""},
		{"gss then ssl", append(pgPacket(pgGSSENCRequestCode), pgPacket(pgSSLRequestCode)...), pgSSL, "N", ""},
		{"cancel", pgPacket(pgCancelRequestCode, 1, 2, 3, 4, 5, 6, 7, 8), pgCancel, "", ""},
		{"startup", startup, pgStartup, "", ""},
		{"too short", []byte{0, 0, 0, 4, 0, 0, 0, 0}, 0, "", "invalid PostgreSQL startup packet length 4"},
		{"too long", []byte{0, 1, 0, 0, 0, 0, 0, 0}, 0, "", "length 65536"},
		{"protocol 2", pgPacket(2 << 16), 0, "", "unsupported PostgreSQL frontend protocol 2.0"},
		{"truncated", pgPacket(pgSSLRequestCode)[:6], 0, "", "read PostgreSQL startup packet"},
		{"gss twice", append(pgPacket(pgGSSENCRequestCode), pgPacket(pgGSSENCRequestCode)...), 0, "N", "GSSENCRequest twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &rw{in: bytes.NewReader(tc.in)}
			kind, packet, err := readPostgresOpening(c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || kind != tc.kind {
				t.Fatalf("got %v %v, want %v", kind, err, tc.kind)
			}
			if c.out.String() != tc.written {
				t.Errorf("wrote %q, want %q", c.out.String(), tc.written)
			}
			if kind == pgStartup && !bytes.Equal(packet, startup) {
				t.Errorf("startup packet not kept whole")
			}
		})
	}
}

func FuzzReadPostgresOpening(f *testing.F) {
	f.Add(pgPacket(pgSSLRequestCode))
	f.Add(append(pgPacket(pgGSSENCRequestCode), pgPacket(pgSSLRequestCode)...))
	f.Add(pgPacket(pgCancelRequestCode, 1, 2, 3, 4, 5, 6, 7, 8))
	f.Add(pgPacket(pgProtocol3, []byte("user\x00x\x00\x00")...))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &rw{in: bytes.NewReader(in)}
		kind, packet, err := readPostgresOpening(c)
		if err != nil {
			return
		}
		if len(packet) < 8 || len(packet) > maxStartupPacket {
			t.Fatalf("accepted a %d-byte packet", len(packet))
		}
		if kind == pgSSL && len(packet) != 8 {
			t.Fatal("SSLRequest with a body")
		}
	})
}

func TestRequestPostgresTLS(t *testing.T) {
	for answer, want := range map[string]string{"S": "", "N": "ssl = off", "E": "unexpected answer", "": "read the answer"} {
		c := &rw{in: strings.NewReader(answer)}
		err := requestPostgresTLS(c)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("answer %q: %v, want %q", answer, err, want)
		}
		if !bytes.Equal(c.out.Bytes(), pgPacket(pgSSLRequestCode)) {
			t.Errorf("sent %x, want an SSLRequest", c.out.Bytes())
		}
	}
}

// localForwarder is a Forwarder with only its local side configured, enough to
// exercise acceptLocal over real loopback sockets.
func localForwarder(t *testing.T, mode LocalMode) (*Forwarder, *certs.Credentials) {
	t.Helper()
	res, err := (&certs.Store{Dir: filepath.Join(t.TempDir(), ".devmtls")}).Ensure(context.Background(), certs.Request{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Credentials
	f, err := New(Options{Targets: []Target{{Kind: KindPod, Name: "p", Ports: []PortSpec{{Local: 0, Remote: "1"}}}},
		Local: mode, LocalTLS: c.ServerConfig(c.Top), Protocol: ProtocolPostgres})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// acceptOnce runs acceptLocal on one real loopback connection and returns its
// result once the client function is done.
func acceptOnce(t *testing.T, f *Forwarder, client func(net.Conn)) (pendingLocal, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		p   pendingLocal
		err error
	}
	res := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer raw.Close()
		c, p, err := f.acceptLocal(raw)
		if err == nil {
			// Prove the connection works: echo one line.
			buf := make([]byte, 5)
			if _, err = io.ReadFull(c, buf); err == nil {
				_, err = c.Write(buf)
			}
		}
		res <- result{p, err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client(conn)
	conn.Close()
	select {
	case r := <-res:
		return r.p, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("acceptLocal hung")
	}
	return pendingLocal{}, nil
}

func TestAcceptLocalPostgresTLS(t *testing.T) {
	f, c := localForwarder(t, LocalTLS)
	var reply [1]byte
	_, err := acceptOnce(t, f, func(conn net.Conn) {
		conn.Write(pgPacket(pgGSSENCRequestCode))
		io.ReadFull(conn, reply[:1])
		if reply[0] != 'N' {
			t.Errorf("GSSENCRequest answered %q", reply[0])
		}
		conn.Write(pgPacket(pgSSLRequestCode))
		io.ReadFull(conn, reply[:1])
		if reply[0] != 'S' {
			t.Errorf("SSLRequest answered %q", reply[0])
		}
		tc := tls.Client(conn, c.ClientConfig(c.Top, "localhost"))
		tc.Write([]byte("hello"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "hello" {
			t.Errorf("echo over local TLS: %q %v", buf, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAcceptLocalPostgresRejectsBytesBeforeHandshake(t *testing.T) {
	// CVE-2021-23222's server-side twin: a query pipelined after SSLRequest, in
	// plain text, must not be taken as part of the session.
	f, _ := localForwarder(t, LocalTLS)
	_, err := acceptOnce(t, f, func(conn net.Conn) {
		query := append([]byte{'Q', 0, 0, 0, 13}, "SELECT 1;\x00"...)
		conn.Write(append(pgPacket(pgSSLRequestCode), query...))
		io.Copy(io.Discard, conn)
	})
	if err == nil || !strings.Contains(err.Error(), "unencrypted data after the SSL request") {
		t.Fatalf("got %v", err)
	}
}

func TestAcceptLocalPostgresRefusesPlainStartupOnTLSListener(t *testing.T) {
	f, _ := localForwarder(t, LocalTLS)
	var answer []byte
	_, err := acceptOnce(t, f, func(conn net.Conn) {
		conn.Write(pgPacket(pgProtocol3, []byte("user\x00x\x00\x00")...))
		answer, _ = io.ReadAll(conn)
	})
	if err == nil || len(answer) == 0 || answer[0] != 'E' || !bytes.Contains(answer, []byte("sslmode=verify-full")) {
		t.Fatalf("got %v, answer %q", err, answer)
	}
}

func TestAcceptLocalPostgresPlain(t *testing.T) {
	f, _ := localForwarder(t, LocalPlain)
	startup := pgPacket(pgProtocol3, []byte("user\x00x\x00\x00")...)
	p, err := acceptOnce(t, f, func(conn net.Conn) {
		conn.Write(pgPacket(pgSSLRequestCode))
		var reply [1]byte
		io.ReadFull(conn, reply[:])
		if reply[0] != 'N' {
			t.Errorf("plain listener answered SSLRequest with %q", reply[0])
		}
		conn.Write(startup)
		conn.Write([]byte("hello"))
		io.ReadFull(conn, make([]byte, 5))
	})
	if err != nil || !bytes.Equal(p.startup, startup) {
		t.Fatalf("got %v, startup %q", err, p.startup)
	}
}
