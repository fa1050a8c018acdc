package portforward

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/devmtls/devmtls/certs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// socketStream is a data stream made of a loopback TCP connection, so the
// writes the bridge makes can be counted. It stands in for a spdystream stream
// through the API server, which test/e2e exercises for real.
type socketStream struct {
	net.Conn
	writes atomic.Int64
}

func (s *socketStream) Write(p []byte) (int, error) {
	s.writes.Add(1)
	return s.Conn.Write(p)
}
func (s *socketStream) Reset() error         { return s.Conn.Close() }
func (s *socketStream) Close() error         { return s.Conn.(*net.TCPConn).CloseWrite() }
func (s *socketStream) Headers() http.Header { return nil }
func (s *socketStream) Identifier() uint32   { return 1 }

// countingConn counts the reads that returned data.
type countingConn struct {
	net.Conn
	reads atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestPipeBatchesStreamWrites proves the batching: what is read from the local
// client leaves in at most one stream write (one SPDY frame) per read, however
// many TLS records it takes, and every byte comes back intact through
// a real TLS echo server on the pod side.
func TestPipeBatchesStreamWrites(t *testing.T) {
	pod := clusterKeypair(t, certs.ModeShared)
	cc, err := CredentialsFromSecret(secret(map[string][]byte{"cert": pod.Top.CertPEM, "key": pod.Top.KeyPEM}))
	if err != nil {
		t.Fatal(err)
	}
	streamEnd, podEnd := tcpPair(t)
	go func() {
		s := tls.Server(podEnd, pod.ServerConfig(pod.Top))
		io.Copy(s, s)
		s.CloseWrite()
	}()
	stream := &socketStream{Conn: streamEnd}
	reader := &streamConn{Stream: stream, remote: "pod"}
	batch := &batchConn{Conn: reader}
	remote := tls.Client(batch, cc.ClientConfig(""))
	if err := remote.Handshake(); err != nil {
		t.Fatal(err)
	}

	client, localEnd := tcpPair(t)
	local := &countingConn{Conn: localEnd}
	before := stream.writes.Load()
	done := make(chan struct{})
	go func() {
		pc := &podConn{sess: &session{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orders-a"}}}, data: stream, reader: reader, stream: batch, tls: remote}
		if err := pipe(&localConn{Conn: local, raw: localEnd}, pc, &batchBudget{}, ProtocolTCP); err != nil {
			t.Errorf("the echo pod finished, yet pipe says %v", err)
		}
		close(done)
	}()

	const size = 8 << 20
	sent := make([]byte, size)
	rand.Read(sent)
	go client.Write(sent)
	got := make([]byte, size)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sent, got) {
		t.Fatal("echoed bytes differ from those sent")
	}
	writes, reads := stream.writes.Load()-before, local.reads.Load()
	if writes > reads {
		t.Errorf("%d local reads left as %d stream writes; want at most one write per read", reads, writes)
	}
	if minRecords := int64(size / (16 << 10)); writes >= minRecords {
		t.Errorf("%d stream writes for %d bytes: no fewer than one per TLS record", writes, size)
	}
	t.Logf("%d bytes: %d local reads, %d stream writes", size, reads, writes)

	client.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadAll(client); err != nil {
		t.Fatal(err)
	}
	<-done
}

// TestRelayDropsItsBatchBufferWhenIdle: a connection that goes quiet gives
// its batch buffer back (relayIdleRelease).
func TestRelayDropsItsBatchBufferWhenIdle(t *testing.T) {
	dst, reader := tcpPair(t)
	src, writer := tcpPair(t)
	batch := &batchConn{Conn: dst}
	done := make(chan error, 1)
	go func() { done <- relay(batch, src, batch, &batchBudget{}, nil) }()
	const size = 256 << 10
	go writer.Write(make([]byte, size))
	if _, err := io.ReadFull(reader, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the idle relay drops its batch buffer", func() bool {
		batch.mu.Lock()
		defer batch.mu.Unlock()
		return batch.pending == nil
	})
	writer.Close()
	if err := <-done; err != nil {
		t.Errorf("relay after its source ended: %v", err)
	}
}
