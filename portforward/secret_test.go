package portforward

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func clusterKeypair(t *testing.T, mode certs.Mode) *certs.Credentials {
	t.Helper()
	res, err := (&certs.Store{Dir: filepath.Join(t.TempDir(), "c")}).Ensure(context.Background(), certs.Request{Mode: mode, Services: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Credentials
}

func secret(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mtls", Namespace: "shop"}, Data: data}
}

func TestCredentialsFromSecret(t *testing.T) {
	c := clusterKeypair(t, certs.ModeShared)
	for _, data := range []map[string][]byte{
		{"cert": c.Top.CertPEM, "key": c.Top.KeyPEM},
		{"tls.crt": c.Top.CertPEM, "tls.key": c.Top.KeyPEM},
		{"cert": c.Top.CertPEM, "key": c.Top.KeyPEM, "ca.crt": c.CAPEM},
	} {
		cc, err := CredentialsFromSecret(secret(data))
		if err != nil {
			t.Fatal(err)
		}
		_, hasCA := data["ca.crt"]
		if cc.Pinned == hasCA {
			t.Errorf("pinned = %v with keys %v", cc.Pinned, data)
		}
	}
	for name, tc := range map[string]struct {
		data map[string][]byte
		want string
	}{
		"no cert":  {map[string][]byte{"key": c.Top.KeyPEM, "foo": nil}, "has no certificate (looked for keys cert, tls.crt; it has keys foo, key)"},
		"no key":   {map[string][]byte{"cert": c.Top.CertPEM}, "has no private key"},
		"empty":    {nil, "it has no keys"},
		"garbage":  {map[string][]byte{"cert": []byte("x"), "key": c.Top.KeyPEM}, "certificate does not parse"},
		"mismatch": {map[string][]byte{"cert": c.Top.CertPEM, "key": clusterKeypair(t, certs.ModeShared).Top.KeyPEM}, "does not match"},
	} {
		if _, err := CredentialsFromSecret(secret(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "shop/mtls") {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestClusterClientConfigVerifies runs real handshakes: the pinned certificate
// (and only it) passes without a server name; with a CA the chain is checked;
// with a server name the name is checked too.
func TestClusterClientConfigVerifies(t *testing.T) {
	pinned := clusterKeypair(t, certs.ModeShared)
	other := clusterKeypair(t, certs.ModeShared)
	withCA := clusterKeypair(t, certs.ModeCA)
	ccPinned, _ := CredentialsFromSecret(secret(map[string][]byte{"cert": pinned.Top.CertPEM, "key": pinned.Top.KeyPEM}))
	orders, _ := withCA.Service("orders")
	ccCA, _ := CredentialsFromSecret(secret(map[string][]byte{"cert": withCA.Top.CertPEM, "key": withCA.Top.KeyPEM, "ca": withCA.CAPEM}))

	try := func(server *tls.Config, client *tls.Config) error {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Write([]byte("x"))
				c.Close()
			}
		}()
		conn, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := try(pinned.ServerConfig(pinned.Top), ccPinned.ClientConfig("")); err != nil {
		t.Errorf("pinned pod: %v", err)
	}
	// A pod with another keypair is refused; it asks for no client certificate,
	// so the refusal can only be our verification's.
	impostor := other.ServerConfig(other.Top)
	impostor.ClientAuth = tls.NoClientCert
	if err := try(impostor, ccPinned.ClientConfig("")); err == nil || !strings.Contains(err.Error(), "not trusted by secret shop/mtls") {
		t.Error("a pod with a different certificate was accepted under pinning")
	}
	if err := try(withCA.ServerConfig(orders), ccCA.ClientConfig("")); err != nil {
		t.Errorf("CA-signed pod: %v", err)
	}
	if err := try(withCA.ServerConfig(orders), ccCA.ClientConfig("orders")); err != nil {
		t.Errorf("CA-signed pod with its server name: %v", err)
	}
	if err := try(withCA.ServerConfig(orders), ccCA.ClientConfig("payments")); err == nil {
		t.Error("a pod certificate for orders passed as payments")
	}
}
