package e2e

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestForwardPodDeletedMidTransferIsAnError is issue 13's proof: when the pod
// is deleted in the middle of a download, the local TLS client's read fails
// (a connection reset) instead of ending cleanly, so it cannot take a cut
// answer for a whole one; a download the pod finishes still ends cleanly.
// kubectl port-forward with the client doing TLS itself is run the same way
// for comparison (its client sees the TLS stream cut short: unexpected EOF).
//
// The client only reads while the pod goes: a reset is reported to one
// system call, and a client writing at that moment could be the one to get it.
func TestForwardPodDeletedMidTransferIsAnError(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "source", 1, "source")
	f := s.forward(t, 2, "deploy/source", ":8443")
	dial := func() net.Conn {
		conn, err := tls.Dial("tcp", f.ipv4(t, 0), s.devClient())
		if err != nil {
			t.Fatalf("dial devmtls forward: %v\n%s", err, f.stderr)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	const whole = 8 << 20
	if n, err := download(dial(), whole, nil); n != whole || err != nil {
		t.Fatalf("a download the pod finished: %d of %d bytes, %v; want all of it and a clean end\n%s", n, whole, err, f.stderr)
	}

	pod := s.c.pods(t, s.ns, "source")[0]
	deletePod := func() { s.c.kubectl(t, "-n", s.ns, "delete", "pod", pod, "--wait=false") }
	n, err := download(dial(), 1<<40, deletePod)
	t.Logf("devmtls forward: the pod deleted after %d bytes, the client's read ended with: %v", n, err)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the client of devmtls forward read %d bytes, then %v; want a connection reset, never a clean end\n%s", n, err, f.stderr)
	}

	s.c.kubectl(t, "-n", s.ns, "rollout", "status", "deploy/source", "--timeout=3m")
	pod = s.c.pods(t, s.ns, "source")[0]
	kaddr, _ := s.c.kubectlPortForward(t, s.ns, "pod/"+pod, ":8443")
	conn, err := tls.Dial("tcp", kaddr, s.cluster.ClientConfig(s.cluster.Top, "localhost"))
	if err != nil {
		t.Fatalf("dial kubectl port-forward: %v", err)
	}
	defer conn.Close()
	// Reported, not asserted: kubectl's behaviour is the reference, not under test.
	n, err = download(conn, 1<<40, deletePod)
	t.Logf("kubectl port-forward, TLS in the client: the pod deleted after %d bytes, the client's read ended with: %v", n, err)
}

// download asks a source pod for size bytes and reads until the end, calling
// cut once 16 MiB have come. It returns the bytes read and the error that
// ended reading, nil for a clean end (io.EOF after the pod's close_notify).
func download(conn net.Conn, size uint64, cut func()) (int64, error) {
	if err := binary.Write(conn, binary.BigEndian, size); err != nil {
		return 0, err
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Minute))
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := conn.Read(buf)
		n += int64(k)
		if cut != nil && n >= 16<<20 {
			cut()
			cut = nil
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
