package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/testenv"
)

// forwardCerts is what devmtls status --json says about the credentials of
// each forward.
type forwardCerts struct {
	Forwards *struct {
		PID      int `json:"pid"`
		Forwards []struct {
			As                 string   `json:"as"`
			Host               []string `json:"host"`
			DevFingerprint     string   `json:"dev_fingerprint_sha256"`
			ClusterFingerprint string   `json:"cluster_fingerprint_sha256"`
			Stale              bool     `json:"stale"`
		} `json:"forwards"`
	} `json:"forwards"`
}

func (h *hybridShop) forwardCerts(t testing.TB) forwardCerts {
	t.Helper()
	var s forwardCerts
	out := h.mustRun(t, "status", "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if s.Forwards == nil || len(s.Forwards.Forwards) != 1 {
		t.Fatalf("status reports no forward: %s", out)
	}
	return s
}

func (h *hybridShop) pricingFromOrders(t testing.TB) error {
	body, err := h.callPricingFromOrders(t, "/price?sku=mug")
	if err != nil || !strings.Contains(body, `"price_cents": 1250`) {
		return fmt.Errorf("orders -> pricing: %v: %s", err, body)
	}
	return nil
}

// TestHybridRotationReachesRunningForwards is the README's rotation advice,
// `devmtls certs rotate && devmtls up -d`, on the hybrid shop, in each mode
// (issue 14: the advice must be true for every mode). The rotation alone
// already reaches the running forwards process (it reloads; it is not
// restarted) and the copies mounted in the containers, so a fresh process in
// a container reaches the cluster service with the new files; up -d reuses
// the forwards and recreates the services; the host's calls succeed; a client
// holding the old dev keypair is refused; status shows what each forward
// serves and presents. In ca mode each service presents a leaf of its own and
// the forward the host leaf, all signed by the environment's CA, which the
// rotation replaces too.
func TestHybridRotationReachesRunningForwards(t *testing.T) {
	for _, mode := range []certs.Mode{certs.ModeShared, certs.ModeCA} {
		t.Run(string(mode), func(t *testing.T) {
			testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
				testHybridRotationReachesRunningForwards(t, line, mode)
			})
		})
	}
}

// setMode makes the shop's x-devmtls ask for mode, in both of its compose
// files (the hybrid file repeats the base file's mode).
func (h *hybridShop) setMode(t testing.TB, mode certs.Mode) {
	t.Helper()
	for _, f := range []string{"compose.yaml", "compose.hybrid.yaml"} {
		p := filepath.Join(h.dir, f)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		const shared = "\n  mode: shared\n"
		if !strings.Contains(string(data), shared) {
			t.Fatalf("%s does not say %q in x-devmtls: the shop changed, change setMode", p, strings.TrimSpace(shared))
		}
		data = []byte(strings.Replace(string(data), shared, "\n  mode: "+string(mode)+"\n", 1))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func testHybridRotationReachesRunningForwards(t *testing.T, line testenv.ComposeLine, mode certs.Mode) {
	h := newHybridShop(t, "", line, false)
	h.setMode(t, mode)
	h.mustRun(t, "up", "-d")
	if err := h.pricingFromOrders(t); err != nil {
		t.Fatal(err)
	}
	before := h.forwardCerts(t)
	old := h.devCreds(t)
	if old.Mode != mode || mode == certs.ModeCA && !slices.Contains(old.Services, "orders") {
		t.Fatalf("up -d made %s credentials for %v, want %s ones (with a leaf for orders in ca mode)", old.Mode, old.Services, mode)
	}

	h.mustRun(t, "certs", "rotate")
	rotated := h.devCreds(t)
	if rotated.Fingerprint == old.Fingerprint || rotated.Mode != mode {
		t.Fatalf("certs rotate kept the keypair or changed the mode (%s, was %s)", rotated.Mode, mode)
	}
	if mode == certs.ModeCA && rotated.CA.Equal(old.CA) {
		t.Fatal("certs rotate in ca mode kept the CA")
	}
	// shopsvc call reads /var/mtls per run: the new files are there, and the
	// forward must already serve the new pair and trust only it.
	within(t, liveWithin, "a container's call after the rotation", func() error { return h.pricingFromOrders(t) })

	out := h.mustRun(t, "up", "-d")
	if !strings.Contains(out, "reusing the running forwards pricing -> svc/pricing") {
		t.Fatalf("up -d after the rotation did not reuse the forwards:\n%s", out)
	}
	within(t, liveWithin, "a container's call after up -d", func() error { return h.pricingFromOrders(t) })
	within(t, liveWithin, "a host process's call through devmtls exec", func() error {
		out, code := h.run(t, "exec", "--", "sh", "-c",
			`curl -sS --fail --max-time 60 --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://$PRICING_ADDR/price?sku=cap"`)
		if code != 0 || !strings.Contains(out, `"price_cents": 1500`) {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})

	st := h.forwardCerts(t)
	f := st.Forwards.Forwards[0]
	if st.Forwards.PID != before.Forwards.PID {
		t.Errorf("the forwards process was restarted (%d, was %d): it must reload instead", st.Forwards.PID, before.Forwards.PID)
	}
	if f.DevFingerprint != rotated.Fingerprint || f.Stale {
		t.Errorf("status: the forward serves %s (stale %v), the environment has %s", f.DevFingerprint, f.Stale, rotated.Fingerprint)
	}
	if want := certs.Fingerprint(h.cluster.Top.Certificate); f.ClusterFingerprint != want {
		t.Errorf("status: the forward presents %s to the pod, the Secret holds %s", f.ClusterFingerprint, want)
	}
	if text := h.mustRun(t, "status"); !strings.Contains(text, "DEV CERT") || !strings.Contains(text, rotated.Fingerprint[:11]) {
		t.Errorf("status does not show the certificates:\n%s", text)
	}

	// The host listener: the new keypair is served, the old one refused (the
	// client trusts the new anchor, so only the forward can refuse it).
	host := f.Host[0]
	if _, err := httpsGetPath(host, "/price?sku=tee", rotated.ClientConfig(rotated.Top, "localhost")); err != nil {
		t.Fatalf("the host listener with the new keypair: %v", err)
	}
	oldClient := old.ClientConfig(old.Top, "localhost")
	oldClient.RootCAs = rotated.Pool()
	if body, err := httpsGetPath(host, "/price?sku=tee", oldClient); err == nil {
		t.Fatalf("a client holding the old dev keypair was served: %s", body)
	}
	// A client left entirely from before the rotation (old keypair, old
	// anchor) gets nowhere either: the forward no longer serves the old pair.
	if body, err := httpsGetPath(host, "/price?sku=tee", old.ClientConfig(old.Top, "localhost")); err == nil {
		t.Fatalf("a client holding the old dev keypair and trust anchor was served: %s", body)
	}
}
