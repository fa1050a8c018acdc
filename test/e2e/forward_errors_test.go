package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestForwardErrorsAreOneSentence checks each failure users meet names the
// resource and the fix, with kubectl's exit codes (2 for usage).
func TestForwardErrorsAreOneSentence(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "orders", 1, "http")
	bare := s.c.namespace(t) // no Secret in it
	s.c.deployMTLSInto(t, bare, "orders", s.cluster)
	s.c.kubectl(t, "-n", s.ns, "create", "secret", "generic", "wrongkeys", "--from-literal=crt=x", "--from-literal=pem=y")
	s.c.kubectl(t, "-n", s.ns, "scale", "deploy/orders", "--replicas=1")
	s.c.kubectl(t, "-n", s.ns, "create", "deployment", "idle", "--image=none", "--replicas=0")
	s.c.kubectl(t, "-n", s.ns, "expose", "deployment", "idle", "--port=443", "--target-port=8443", "--selector=app=idle")
	forbidden := s.c.userKubeconfig(t, "mallory")

	base := []string{"--dir", s.dev.Dir, "forward", "--kubeconfig", s.c.kubeconfig, "-n", s.ns}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad type", append(base, "cm/orders", "443"), 2, `unknown resource type "cm"`},
		{"bad name", append(base, "svc/Orders", "443"), 2, "invalid name"},
		{"bad port", append(base, "svc/orders", "99999"), 2, "outside 1-65535"},
		{"port first", append(base, "443", "svc/orders"), 2, "comes before any TYPE/NAME"},
		{"no port", append(base, "svc/orders"), 2, "svc/orders has no port"},
		{"missing object", append(base, "svc/nope", "443"), 1, `svc/nope not found in namespace "` + s.ns + `"`},
		{"port not exposed", append(base, "svc/orders", "80"), 1, "does not expose port 80 (it exposes 443/https)"},
		{"missing secret", []string{"--dir", s.dev.Dir, "forward", "--kubeconfig", s.c.kubeconfig, "-n", bare, "svc/orders", "443"}, 1,
			"secret " + bare + "/mtls not found: create it"},
		{"wrong keys", append(base, "--secret", "wrongkeys", "svc/orders", "443"), 1,
			"has no certificate (looked for keys cert, tls.crt; it has keys crt, pem)"},
		{"no ready pod", append(base, "--pod-running-timeout", "2s", "svc/idle", "443"), 1, "no Ready pod for svc/idle"},
		{"forbidden", []string{"--dir", s.dev.Dir, "forward", "--kubeconfig", forbidden, "-n", s.ns, "svc/orders", "443"}, 1,
			"forbidden: your Kubernetes user may not get services in namespace"},
		{"missing context", append(base, "--context", "nope", "svc/orders", "443"), 1, `context "nope" not found in kubeconfig`},
		{"plain on all interfaces", append(base, "--local", "plain", "--address", "0.0.0.0", "svc/orders", "443"), 2, "refusing to listen on 0.0.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := devmtls(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d)\n%s\nwant it to contain %q", code, tc.code, out, tc.want)
			}
			if lines := strings.Count(strings.TrimSpace(out), "\n"); lines > 0 {
				t.Errorf("the error takes %d lines; it must be one sentence:\n%s", lines+1, out)
			}
		})
	}
}

// TestForwardSecretAnnotation: the Service names its Secret; --secret wins.
func TestForwardSecretAnnotation(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "orders", 1, "http")
	s.c.kubectl(t, "-n", s.ns, "annotate", "svc/orders", "devmtls.dev/secret=orders-mtls")
	s.c.clusterSecret(t, s.ns, "orders-mtls", s.cluster)
	s.c.kubectl(t, "-n", s.ns, "delete", "secret", "mtls")
	f := s.forward(t, 2, "svc/orders", ":443")
	if body, err := httpsGet(f.ipv4(t, 0), s.devClient()); err != nil || !strings.Contains(body, "to tester") {
		t.Fatalf("with the annotated secret: %q %v\n%s", body, err, f.stderr)
	}
	out, code := devmtls(t, "--dir", s.dev.Dir, "forward", "--kubeconfig", s.c.kubeconfig, "-n", s.ns, "--secret", "mtls", "svc/orders", "443")
	if code != 1 || !strings.Contains(out, "secret "+s.ns+"/mtls not found") {
		t.Fatalf("--secret must override the annotation: exit %d\n%s", code, out)
	}
}

// TestForwardTransports exercises both ways the API server can carry a
// WebSocket port-forward (tunnelled to the kubelet, or translated to SPDY) and
// plain SPDY, checking on the kubelet which path each request took.
func TestForwardTransports(t *testing.T) {
	for _, tunnel := range []bool{false, true} {
		s := newShop(t, tunnel)
		s.c.deployMTLS(t, s.ns, "orders", 1, "http")
		for _, transport := range []string{"websocket", "spdy", "auto"} {
			before := s.c.portForwardStats(t)
			f := s.forward(t, 2, "--transport", transport, "svc/orders", ":443")
			if body, err := httpsGet(f.ipv4(t, 0), s.devClient()); err != nil || !strings.Contains(body, "to tester") {
				t.Fatalf("tunnel=%v transport=%s: %q %v\n%s", tunnel, transport, body, err, f.stderr)
			}
			f.stop(t)
			after := s.c.portForwardStats(t)
			want := "spdy"
			if transport != "spdy" && tunnel {
				want = "websocketTunnel"
			}
			if after[want] <= before[want] {
				t.Errorf("tunnel=%v transport=%s: the kubelet saw no new %s port-forward (before %v, after %v)", tunnel, transport, want, before, after)
			}
		}
	}
}

func (c *cluster) portForwardStats(t testing.TB) map[string]int64 {
	t.Helper()
	var m map[string]int64
	if err := json.Unmarshal([]byte(c.stats(t)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
