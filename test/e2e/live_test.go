package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

// liveWithin is how soon a running forward must serve credentials that
// changed on disk (it looks every second). Attempts start until the deadline
// passes; how long one takes on a loaded machine is not held against it.
const liveWithin = 2 * time.Second

// within retries try until it succeeds, starting attempts until d has passed,
// and fails the test with the last error otherwise.
func within(t testing.TB, d time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// roundTrip connects with cfg and echoes a few bytes; TLS 1.3 reports a
// refused client certificate only on the first read, so a refusal always
// surfaces here.
func roundTrip(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, 4))
	return err
}

// rotateFromAnotherProcess runs devmtls certs rotate on dir and returns the
// new credentials.
func rotateFromAnotherProcess(t testing.TB, dir string) *certs.Credentials {
	t.Helper()
	out, code := devmtls(t, "--dir", dir, "certs", "rotate")
	if code != 0 {
		t.Fatalf("devmtls certs rotate: exit %d\n%s", code, out)
	}
	c, err := (&certs.Store{Dir: dir}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// echoForward runs devmtls forward to a one-pod echo Deployment and checks a
// first connection; it returns the shop, the forward and its IPv4 address.
func echoForward(t *testing.T) (*shop, *forward, string) {
	t.Helper()
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "echo", 1, "echo")
	f := s.forward(t, 2, "svc/echo", ":443")
	addr := f.ipv4(t, 0)
	if err := roundTrip(addr, s.devClient()); err != nil {
		t.Fatal(err)
	}
	return s, f, addr
}

// pausedTransfer echoes size bytes over conn in two halves and waits, after
// the first half came back, until resume is closed: what happens in between
// happens during an open transfer.
type pausedTransfer struct {
	echoed atomic.Int64
	resume chan struct{}
	done   chan error
}

func startPausedTransfer(conn net.Conn, size int64) *pausedTransfer {
	p := &pausedTransfer{resume: make(chan struct{}), done: make(chan error, 1)}
	sent, got := sha256.New(), sha256.New()
	werr := make(chan error, 1)
	go func() {
		rng := mrand.NewChaCha8([32]byte{14})
		buf := make([]byte, 64<<10)
		for off := int64(0); off < size; off += int64(len(buf)) {
			if off == size/2 {
				<-p.resume
			}
			rng.Read(buf)
			sent.Write(buf)
			if _, err := conn.Write(buf); err != nil {
				werr <- fmt.Errorf("write at %d: %w", off, err)
				return
			}
		}
		conn.(interface{ CloseWrite() error }).CloseWrite()
		werr <- nil
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			got.Write(buf[:n])
			p.echoed.Add(int64(n))
			if err == io.EOF {
				break
			}
			if err != nil {
				p.done <- fmt.Errorf("read after %d bytes: %w", p.echoed.Load(), err)
				return
			}
		}
		if err := <-werr; err != nil {
			p.done <- err
			return
		}
		if p.echoed.Load() != size || string(sent.Sum(nil)) != string(got.Sum(nil)) {
			p.done <- fmt.Errorf("echoed %d bytes of %d, SHA-256 equal: %v", p.echoed.Load(), size, string(sent.Sum(nil)) == string(got.Sum(nil)))
			return
		}
		p.done <- nil
	}()
	return p
}

// TestForwardFollowsRotationDuringTransfer: another devmtls process rotates
// the dev credentials while a 64 MiB echo is half way through an open
// connection. The transfer completes intact; from the next connection on the
// forward presents the new keypair and refuses the old one.
func TestForwardFollowsRotationDuringTransfer(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "echo", 1, "echo")
	f := s.forward(t, 2, "svc/echo", ":443")
	addr := f.ipv4(t, 0)
	old := s.dev

	conn, err := tls.Dial("tcp", addr, s.devClient())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 64 << 20
	transfer := startPausedTransfer(conn, size)
	for i := 0; transfer.echoed.Load() < size/2; i++ {
		if i == 3000 {
			t.Fatalf("the first half never came back (%d bytes)\n%s", transfer.echoed.Load(), f.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}

	rotated := rotateFromAnotherProcess(t, s.dev.Dir)
	within(t, liveWithin, "a connection with the new keypair", func() error {
		return roundTrip(addr, rotated.ClientConfig(rotated.Top, "localhost"))
	})
	// A client holding the old keypair (and trusting the new anchor, so only
	// the forward can refuse) is refused.
	oldClient := old.ClientConfig(old.Top, "localhost")
	oldClient.RootCAs = rotated.Pool()
	if err := roundTrip(addr, oldClient); err == nil {
		t.Fatal("after the rotation, a client holding the old keypair was served")
	}
	// The old keypair no longer verifies the forward either: a client that
	// trusts only the old anchor refuses it.
	oldTrust := rotated.ClientConfig(rotated.Top, "localhost")
	oldTrust.RootCAs = old.Pool()
	if err := roundTrip(addr, oldTrust); err == nil {
		t.Fatal("the forward still presents the old certificate")
	}

	close(transfer.resume)
	select {
	case err := <-transfer.done:
		if err != nil {
			t.Fatalf("the transfer open across the rotation: %v\n%s", err, f.stderr)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("the transfer open across the rotation hung\n%s", f.stderr)
	}
	if !strings.Contains(f.stderr.String(), "serving new dev credentials") {
		t.Errorf("the forward did not say it switched:\n%s", f.stderr)
	}
}

// TestForwardKeepsLastGoodCredentials writes a torn key into the environment
// while the forward runs: it goes on serving the pair it has and says why
// once; the rotation its message suggests is then picked up.
func TestForwardKeepsLastGoodCredentials(t *testing.T) {
	s, f, addr := echoForward(t)
	key := filepath.Join(s.dev.Dir, certs.FileKey)
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written in place through the visible link, as a careless editor or a
	// copy interrupted half way would.
	if err := os.WriteFile(key, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	within(t, liveWithin, "the forward says why it keeps its credentials", func() error {
		if !strings.Contains(f.stderr.String(), "keeping the dev credentials loaded before") {
			return fmt.Errorf("nothing in its log:\n%s", f.stderr)
		}
		return nil
	})
	if err := roundTrip(addr, s.devClient()); err != nil {
		t.Fatalf("the forward stopped serving its last good credentials: %v\n%s", err, f.stderr)
	}
	if n := strings.Count(f.stderr.String(), "keeping the dev credentials"); n != 1 {
		t.Errorf("said %d times; once per cause:\n%s", n, f.stderr)
	}

	fixed := rotateFromAnotherProcess(t, s.dev.Dir)
	within(t, liveWithin, "the repaired credentials are served", func() error {
		return roundTrip(addr, fixed.ClientConfig(fixed.Top, "localhost"))
	})
}

// TestForwardFollowsTheClusterSecret replaces the cluster's Secret with a new
// keypair and restarts the pods with it: the running forward's next
// connection succeeds. The Secret deleted: connections fail with the
// missing-Secret sentence; recreated: they succeed again.
func TestForwardFollowsTheClusterSecret(t *testing.T) {
	s, f, addr := echoForward(t)

	next := keypair(t, certs.Request{CommonName: "tester-next"})
	s.c.kubectl(t, "-n", s.ns, "delete", "secret", "mtls")
	s.c.clusterSecret(t, s.ns, "mtls", next)
	s.c.kubectl(t, "-n", s.ns, "rollout", "restart", "deploy/echo")
	s.c.kubectl(t, "-n", s.ns, "rollout", "status", "deploy/echo", "--timeout=3m")
	within(t, time.Minute, "a connection to the pod restarted with the new keypair", func() error {
		return roundTrip(addr, s.devClient())
	})

	s.c.kubectl(t, "-n", s.ns, "delete", "secret", "mtls")
	want := "secret " + s.ns + "/mtls not found: create it"
	within(t, time.Minute, "a connection fails once the Secret is deleted", func() error {
		if err := roundTrip(addr, s.devClient()); err == nil {
			return fmt.Errorf("still served")
		}
		if !strings.Contains(f.stderr.String(), want) {
			return fmt.Errorf("the forward did not say %q:\n%s", want, f.stderr)
		}
		return nil
	})

	s.c.clusterSecret(t, s.ns, "mtls", next)
	within(t, time.Minute, "connections succeed once the Secret is back", func() error {
		return roundTrip(addr, s.devClient())
	})
}
