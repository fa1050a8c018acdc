package portforward

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

// TestForwardServesLiveDevCredentials runs the local side from a certs.Live
// source, as devmtls forward does: a connection open across a rotation keeps
// echoing, the next one needs the new keypair, and a renewal the source makes
// itself (the store's clock moved past the renewal point) is served too.
func TestForwardServesLiveDevCredentials(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	clock := func() time.Time { return now }
	store := &certs.Store{Dir: r.dev.Dir, Now: clock}
	live, err := certs.NewLive(store, r.dev, certs.LiveOptions{Renew: true, Logf: r.logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	r.addPod("orders-a", true)
	if err := r.start(func(o *Options) { o.LocalTLS = live.ServerConfig() }); err != nil {
		t.Fatal(err)
	}
	open := r.dial()
	if err := echoed(open, 64<<10); err != nil {
		t.Fatal(err)
	}

	rotated, err := (&certs.Store{Dir: r.dev.Dir}).Rotate(context.Background(), certs.Request{})
	if err != nil {
		t.Fatal(err)
	}
	live.Poll(context.Background())
	if err := r.tryEcho(); err == nil {
		t.Fatal("a client with the rotated-away keypair was served")
	}
	r.dev = rotated.Credentials
	if err := r.tryEcho(); err != nil {
		t.Fatalf("a client with the new keypair: %v\n%s", err, r.logs)
	}
	if err := echoed(open, 64<<10); err != nil {
		t.Fatalf("the connection opened before the rotation: %v", err)
	}

	now = rotated.Credentials.RenewAt().Add(time.Minute)
	live.Poll(context.Background())
	if live.Fingerprint() == rotated.Credentials.Fingerprint {
		t.Fatalf("no renewal past the renewal point:\n%s", r.logs)
	}
	renewed := live.Current()
	client := renewed.ClientConfig(renewed.Top, "localhost")
	client.Time = clock
	c, err := tls.Dial("tcp", r.addr, client)
	if err != nil {
		t.Fatalf("the renewed keypair: %v\n%s", err, r.logs)
	}
	defer c.Close()
	if err := echoed(c, 1024); err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0]; !got.Equal(renewed.Top.Certificate) {
		t.Error("the forward does not present the renewed certificate")
	}
}
