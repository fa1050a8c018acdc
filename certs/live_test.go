package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// liveServer serves a Live source's configuration on loopback: each
// connection completes its handshake, then echoes.
func liveServer(t *testing.T, l *Live) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", l.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					io.Copy(c, c)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip connects with cfg and echoes one message; it returns the
// certificate the server presented. TLS 1.3 reports a refused client
// certificate on the first read, so a refusal always surfaces here.
func roundTrip(addr string, cfg *tls.Config) (*tls.Conn, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		c.Close()
		return nil, err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *lineLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newLive(t *testing.T, s *Store, opts LiveOptions) (*Live, *lineLog) {
	t.Helper()
	c, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	log := &lineLog{}
	opts.Logf = log.logf
	l, err := NewLive(s, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l, log
}

// TestLiveFollowsRotationByAnotherProcess: after a rotation through another
// Store (as another devmtls process does it), the next connection gets the
// new keypair, a client holding the old one is refused — even one holding a
// session ticket from before — and a connection opened before keeps working.
func TestLiveFollowsRotationByAnotherProcess(t *testing.T) {
	s, _ := newStore(t)
	old := ensure(t, s, Request{}).Credentials
	l, log := newLive(t, s, LiveOptions{})
	addr := liveServer(t, l)

	oldClient := old.ClientConfig(old.Top, "localhost")
	oldClient.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	open, err := roundTrip(addr, oldClient)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	// A second connection leaves a session ticket in the cache (TLS 1.3 sends
	// tickets after the handshake; the echo above read past them).
	if c, err := roundTrip(addr, oldClient); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	if c, err := roundTrip(addr, oldClient); err != nil || !c.ConnectionState().DidResume {
		t.Fatalf("the old client does not resume sessions (%v), so the test proves nothing about tickets", err)
	} else {
		c.Close()
	}

	other := &Store{Dir: s.Dir, Now: s.Now}
	rotated, err := other.Rotate(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	l.Poll(context.Background())
	if got := l.Fingerprint(); got != rotated.Credentials.Fingerprint {
		t.Fatalf("serving %s after the rotation, want %s\n%s", got, rotated.Credentials.Fingerprint, log)
	}
	c, err := roundTrip(addr, rotated.Credentials.ClientConfig(rotated.Credentials.Top, "localhost"))
	if err != nil {
		t.Fatalf("a client with the new keypair: %v", err)
	}
	c.Close()
	if c, err := roundTrip(addr, oldClient); err == nil {
		resumed := c.ConnectionState().DidResume
		c.Close()
		t.Fatalf("a client with the rotated-away keypair was served (resumed: %v)", resumed)
	}
	// The connection opened before the rotation still echoes.
	if _, err := open.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(open, make([]byte, 4)); err != nil {
		t.Fatalf("an open connection broke with the rotation: %v", err)
	}
	if log.count("serving new dev credentials") != 1 {
		t.Errorf("log:\n%s", log)
	}
}

// TestLiveKeepsLastGoodCredentials writes damaged files into the environment
// while the source serves: it keeps the pair it has, says why once, and takes
// the next good generation.
func TestLiveKeepsLastGoodCredentials(t *testing.T) {
	for name, damage := range map[string]func(dir string){
		"torn key": func(dir string) {
			p := filepath.Join(dir, FileKey)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o600)
		},
		"half-written state": func(dir string) {
			p := filepath.Join(dir, stateFile)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o600)
		},
		"foreign key": func(dir string) {
			os.WriteFile(filepath.Join(dir, FileKey), ensure(t, &Store{Dir: filepath.Join(t.TempDir(), "x")}, Request{}).Credentials.Top.KeyPEM, 0o600)
		},
		"environment gone": func(dir string) { os.RemoveAll(dir) },
		"foreign link": func(dir string) {
			os.Remove(filepath.Join(dir, FileCA))
			os.Symlink("/etc/hostname", filepath.Join(dir, FileCA))
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := newStore(t)
			good := ensure(t, s, Request{}).Credentials
			l, log := newLive(t, s, LiveOptions{})
			addr := liveServer(t, l)
			client := good.ClientConfig(good.Top, "localhost")
			damage(s.Dir)
			for range 3 {
				l.Poll(context.Background())
			}
			if l.Fingerprint() != good.Fingerprint {
				t.Fatal("damaged files replaced the credentials served")
			}
			if c, err := roundTrip(addr, client); err != nil {
				t.Fatalf("no longer serving the last good pair: %v", err)
			} else {
				c.Close()
			}
			if n := log.count("keeping the dev credentials loaded before"); n != 1 {
				t.Fatalf("want one line saying why, got %d:\n%s", n, log)
			}
			// The fix the message gives puts everything right.
			if strings.Contains(name, "link") || strings.Contains(name, "gone") {
				os.RemoveAll(s.Dir)
			}
			fixed, err := s.Rotate(context.Background(), Request{})
			if err != nil {
				t.Fatal(err)
			}
			l.Poll(context.Background())
			if l.Fingerprint() != fixed.Credentials.Fingerprint {
				t.Fatalf("the repaired environment was not taken:\n%s", log)
			}
		})
	}
}

// TestLiveRenewsWhileRunning moves the store's clock past the renewal point:
// the source renews under the store's lock while other stores (other devmtls
// processes) renew concurrently, and everyone ends up with one keypair.
func TestLiveRenewsWhileRunning(t *testing.T) {
	s, now := newStore(t)
	first := ensure(t, s, Request{}).Credentials
	var changes []string
	l, log := newLive(t, s, LiveOptions{Renew: true})
	l.opts.OnChange = func(_ context.Context, c *Credentials) { changes = append(changes, c.Fingerprint) }
	addr := liveServer(t, l)

	l.Poll(context.Background())
	if l.Fingerprint() != first.Fingerprint || log.count("renewed") != 0 {
		t.Fatalf("renewed fresh credentials:\n%s", log)
	}
	*now = now.Add(DefaultValidity * 2 / 3).Add(time.Hour)
	clock := s.Now

	var wg sync.WaitGroup
	results := make([]*Result, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = (&Store{Dir: s.Dir, Now: clock}).Ensure(context.Background(), Request{})
		}()
	}
	l.Poll(context.Background())
	wg.Wait()
	l.Poll(context.Background())
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Ensure %d: %v", i, err)
		}
	}
	disk, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if disk.Fingerprint == first.Fingerprint || l.Fingerprint() != disk.Fingerprint {
		t.Fatalf("serving %s, disk has %s, first was %s\n%s", l.Fingerprint(), disk.Fingerprint, first.Fingerprint, log)
	}
	for i, r := range results {
		if r.Credentials.Fingerprint != disk.Fingerprint {
			t.Errorf("concurrent Ensure %d ended with %s (%s), disk has %s", i, r.Credentials.Fingerprint, r.Action, disk.Fingerprint)
		}
	}
	if len(changes) != 1 || changes[0] != disk.Fingerprint {
		t.Errorf("OnChange calls: %v", changes)
	}
	client := disk.ClientConfig(disk.Top, "localhost")
	client.Time = clock
	if c, err := roundTrip(addr, client); err != nil {
		t.Fatalf("renewed pair not served: %v", err)
	} else if c.ConnectionState().PeerCertificates[0].NotAfter.Before(now.Add(DefaultValidity / 2)) {
		t.Error("the served certificate was not renewed")
	}
}

// TestLiveRenewalFailureIsRetriedLater: a renewal that cannot be written
// (the environment is damaged) keeps the credentials, says why once and does
// not retry on every look.
func TestLiveRenewalFailureIsRetriedLater(t *testing.T) {
	s, now := newStore(t)
	first := ensure(t, s, Request{}).Credentials
	l, log := newLive(t, s, LiveOptions{Renew: true})
	l.Poll(context.Background())
	os.WriteFile(filepath.Join(s.Dir, FileCert), []byte("garbage"), 0o644)
	*now = now.Add(DefaultValidity - time.Hour)
	for range 3 {
		l.Poll(context.Background())
	}
	if l.Fingerprint() != first.Fingerprint {
		t.Fatal("credentials changed")
	}
	if n := log.count("renew them"); n != 1 {
		t.Fatalf("want one line about the failed renewal, got %d:\n%s", n, log)
	}
	if !l.renewAfter.After(*now) {
		t.Error("no back-off after a failed renewal")
	}
}

// TestLiveRunNoticesChanges runs the polling loop itself.
func TestLiveRunNoticesChanges(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), ".devmtls")}
	ensure(t, s, Request{})
	l, log := newLive(t, s, LiveOptions{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	rotated, err := s.Rotate(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; l.Fingerprint() != rotated.Credentials.Fingerprint; i++ {
		if i == 500 {
			t.Fatalf("never noticed the rotation:\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestLiveServesAServiceIdentity(t *testing.T) {
	s, _ := newStore(t)
	c := ensure(t, s, Request{Mode: ModeCA, Services: []string{"orders"}}).Credentials
	l, _ := newLive(t, s, LiveOptions{Service: "orders"})
	if l.Identity().Name != "orders" || l.Fingerprint() == c.Fingerprint {
		t.Fatalf("serving %q", l.Identity().Name)
	}
	if _, err := NewLive(s, c, LiveOptions{Service: "billing"}); err == nil {
		t.Fatal("an unknown service was accepted")
	}
}
