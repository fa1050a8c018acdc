package e2e

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
)

// TestForwardClusterCredsWithoutSecretAccess: a developer whose role may
// forward to pods but not read Secrets is told to pass --cluster-creds, and
// with the cluster keypair as files (kubernetes.io/tls names here) the
// forward works.
func TestForwardClusterCredsWithoutSecretAccess(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "orders", 1, "http")
	user := "dev-" + s.ns
	s.c.kubectl(t, "-n", s.ns, "create", "role", "forwarder", "--verb=get,list,watch", "--resource=pods,services,deployments")
	s.c.kubectl(t, "-n", s.ns, "create", "role", "portforward", "--verb=create", "--resource=pods/portforward")
	for _, role := range []string{"forwarder", "portforward"} {
		s.c.kubectl(t, "-n", s.ns, "create", "rolebinding", role, "--role="+role, "--user="+user)
	}
	kubeconfig := s.c.userKubeconfig(t, user)
	if out, err := s.c.kubectlErr("--kubeconfig", kubeconfig, "-n", s.ns, "auth", "can-i", "get", "secrets"); err == nil || !strings.HasPrefix(out, "no") {
		t.Fatalf("the user may get secrets (%q, %v); the test needs one who may not", out, err)
	}
	base := []string{"--dir", s.dev.Dir, "forward", "--kubeconfig", kubeconfig, "-n", s.ns}

	out, code := devmtls(t, append(base, "svc/orders", ":443")...)
	if code != 1 || !strings.Contains(out, "may not get secrets") || !strings.Contains(out, "--cluster-creds DIR") {
		t.Fatalf("without Secret access: exit %d\n%s\nwant exit 1 naming --cluster-creds DIR", code, out)
	}

	dir := t.TempDir()
	for name, src := range map[string]string{"tls.crt": s.cluster.Top.Paths.Cert, "tls.key": s.cluster.Top.Paths.Key} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := runForward(t, osexec.Command(devmtlsBin, append(base, "--cluster-creds", dir, "svc/orders", ":443")...), 2)
	body, err := httpsGet(f.ipv4(t, 0), s.devClient())
	if err != nil || !strings.HasPrefix(body, "hello from orders-") || !strings.Contains(body, "to tester") {
		t.Fatalf("with --cluster-creds: %q, %v\n%s", body, err, f.stderr)
	}

	// The files are what is presented: another keypair there is refused by
	// the pods, which trust only the cluster's.
	other := keypair(t, certs.Request{CommonName: "impostor"})
	wrong := t.TempDir()
	for name, src := range map[string]string{"cert": other.Top.Paths.Cert, "key": other.Top.Paths.Key} {
		data, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(wrong, name), data, 0o600)
	}
	g := runForward(t, osexec.Command(devmtlsBin, append(base, "--cluster-creds", wrong, "svc/orders", ":443")...), 2)
	if body, err := httpsGet(g.ipv4(t, 0), s.devClient()); err == nil {
		t.Errorf("another keypair as --cluster-creds was served: %q", body)
	}
	g.stop(t)
	if !strings.Contains(g.stderr.String(), "credentials from directory "+wrong) {
		t.Errorf("the failure does not name the directory:\n%s", g.stderr)
	}
}
