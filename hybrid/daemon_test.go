package hybrid

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/forwards"
)

// unreachableKubeconfig is a kubeconfig that loads but whose API server
// nothing answers: the forward's listeners start, and each connection is
// refused after the local handshake.
func unreachableKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: shop}}]
current-context: c
`
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// localEnv is an environment directory with dev credentials and the
// placement of fs.
func localEnv(t *testing.T, fs []forwards.Forward) (string, *certs.Credentials, Placement) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".devmtls")
	res, err := (&certs.Store{Dir: dir}).Ensure(context.Background(), certs.Request{ExtraNames: []string{"pricing"}})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := Place(context.Background(), dir, fs, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return dir, res.Credentials, pl
}

// ServeLocal (devmtls exec without a background process) listens on the
// recorded host port on loopback only, with mTLS required and the dev
// keypair served.
func TestServeLocalListensOnThePlacedPort(t *testing.T) {
	fs := []forwards.Forward{forward("pricing", 443)}
	dir, creds, pl := localEnv(t, fs)
	spec := Spec{Kubeconfig: unreachableKubeconfig(t), Forwards: fs, HostPorts: pl.Ports, Gateway: "192.0.2.1", Relayed: true}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	local, err := ServeLocal(ctx, dir, spec, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	st := local.Forwards()
	want := "127.0.0.1:" + strconv.Itoa(pl.Ports.Port("pricing", 443))
	if len(st) != 1 || len(st[0].Host) != 1 || st[0].Host[0] != want || len(st[0].Gateway) != 0 || len(st[0].Containers) != 0 {
		t.Fatalf("served %+v, want host %s only (no relays, no gateway)", st, want)
	}

	c, err := tls.Dial("tcp", want, creds.ClientConfig(creds.Top, "pricing"))
	if err != nil {
		t.Fatalf("a client with the dev keypair: %v", err)
	}
	if got := certs.Fingerprint(c.ConnectionState().PeerCertificates[0]); got != creds.Fingerprint {
		t.Errorf("the listener serves %s, the environment has %s", got, creds.Fingerprint)
	}
	c.Close()

	anonymous := creds.ClientConfig(creds.Top, "pricing")
	anonymous.Certificates = nil
	c, err = tls.Dial("tcp", want, anonymous)
	if err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("a client without a certificate: %v, want the handshake refused", err)
	}
}

// The recorded host port taken by another program: the forward fails with
// the error that says why devmtls keeps it and how to free it.
func TestServeLocalRecordedPortTaken(t *testing.T) {
	fs := []forwards.Forward{forward("pricing", 443)}
	dir, _, pl := localEnv(t, fs)
	port := pl.Ports.Port("pricing", 443)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = ServeLocal(context.Background(), dir, Spec{Kubeconfig: unreachableKubeconfig(t), Forwards: fs, HostPorts: pl.Ports}, t.Logf)
	var inUse *HostPortInUseError
	if !errors.As(err, &inUse) || inUse.Port != port || inUse.Forward != "pricing" {
		t.Fatalf("got %v, want a HostPortInUseError for port %d", err, port)
	}
}
