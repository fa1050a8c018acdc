package portforward

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

// writeCreds writes a keypair into dir with the given file names.
func writeCreds(t *testing.T, dir, certName, keyName string, c *certs.Credentials) {
	t.Helper()
	for name, data := range map[string][]byte{certName: c.Top.CertPEM, keyName: c.Top.KeyPEM} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// forbidSecrets makes RBAC refuse every request for a Secret.
func forbidSecrets(r *rig) *int {
	var calls int
	r.client.PrependReactor("*", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "mtls", errors.New("RBAC says no"))
	})
	return &calls
}

// TestForwardClusterCredsDir: a user who may not read Secrets is told, in a
// typed error, to pass --cluster-creds; with the keypair as files the
// forward works without asking for any Secret, and follows the files when
// they change (keeping the last good keypair while one is damaged).
func TestForwardClusterCredsDir(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	forbidSecrets(r)
	err := r.start(nil)
	var forbidden *SecretForbiddenError
	if !errors.As(err, &forbidden) || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "pass --cluster-creds DIR") {
		t.Fatalf("without Secret access: %v; want a SecretForbiddenError naming --cluster-creds", err)
	}

	r = newRig(t)
	r.addPod("orders-a", true)
	calls := forbidSecrets(r)
	dir := t.TempDir()
	writeCreds(t, dir, "tls.crt", "tls.key", r.cluster)
	if err := r.start(func(o *Options) { o.ClusterCredsDir = dir }); err != nil {
		t.Fatal(err)
	}
	if err := r.tryEcho(); err != nil {
		t.Fatal(err)
	}
	if *calls != 0 {
		t.Errorf("with ClusterCredsDir the forward asked for Secrets %d times", *calls)
	}
	if got, want := r.clusterFingerprint(), certs.Fingerprint(r.cluster.Top.Certificate); got != want {
		t.Errorf("status shows cluster certificate %s, want %s", got, want)
	}

	// A damaged key keeps the last good keypair.
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the damaged file is reported", func() bool {
		return strings.Contains(r.logs.String(), "keep presenting the last good certificate")
	})
	if err := r.tryEcho(); err != nil {
		t.Fatalf("with a damaged key file: %v", err)
	}

	next := clusterKeypair(t, certs.ModeShared)
	writeCreds(t, dir, "tls.crt", "tls.key", next)
	r.cluster = next
	r.servePod("orders-a", echo) // the pod's process restarted with the new keypair
	eventually(t, "a connection with the new keypair succeeds", func() bool { return r.tryEcho() == nil })
	if got, want := r.clusterFingerprint(), certs.Fingerprint(next.Top.Certificate); got != want {
		t.Errorf("status shows cluster certificate %s, want %s", got, want)
	}
}

// TestCredentialsFromDir: the /var/mtls/cert and /var/mtls/key layout and
// kubernetes.io/tls's tls.crt and tls.key are both read; a missing key names the directory and the files it has.
func TestCredentialsFromDir(t *testing.T) {
	c := clusterKeypair(t, certs.ModeShared)
	for _, names := range [][2]string{{"cert", "key"}, {"tls.crt", "tls.key"}} {
		dir := t.TempDir()
		writeCreds(t, dir, names[0], names[1], c)
		cc, err := CredentialsFromDir(dir)
		if err != nil {
			t.Fatalf("%v: %v", names, err)
		}
		if !cc.Pinned || !cc.Certificate.Leaf.Equal(c.Top.Certificate) {
			t.Errorf("%v: not the keypair, or not pinned without a CA", names)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cert"), c.Top.CertPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o600)
	_, err := CredentialsFromDir(dir)
	if err == nil || !strings.Contains(err.Error(), "directory "+dir+" has no private key (looked for files key, tls.key; it has files README, cert)") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := CredentialsFromDir(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "no such directory") {
		t.Errorf("missing directory: %v", err)
	}
}
