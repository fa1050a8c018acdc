package composetest

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/hybrid/relay"
	"github.com/devmtls/devmtls/internal/testenv"
)

// relayProject declares two forwards for services on two networks; the
// cluster behind them is never reached (the forwards keep retrying), which
// is all the relays need: a name, a port, and devmtls's listener behind them.
const relayProject = `x-devmtls:
  forwards:
%s
services:
  api:
    image: SHOP
    command: ["docs"]
    user: "10001:10001"
    networks: [default, back]
  web:
    image: SHOP
    command: ["docs"]
    networks: [back]
    x-devmtls: false
networks:
  back: {}
`

const (
	forwardA = `    - {target: svc/a, ports: ["443"]}`
	forwardB = `    - {target: svc/b, ports: ["8443:443"]}`
)

// TestRelaysFollowTheForwards: each declared forward gets a relay container
// answering to its name on every network of the project; the overlay and
// compose config show them; a second up makes no image; a forward removed
// from the file loses its relay at the next up, and down leaves nothing,
// with both Compose lines.
func TestRelaysFollowTheForwards(t *testing.T) {
	requireDocker(t)
	shop, _ := exampleImages(t)
	if ref, err := relay.ImageRef(devmtlsBinary(t)); err == nil {
		e2e.imagesMu.Lock()
		if !slices.Contains(e2e.extraImages, ref) {
			e2e.extraImages = append(e2e.extraImages, ref)
		}
		e2e.imagesMu.Unlock()
	}
	testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
		dir := t.TempDir()
		kubeconfig := filepath.Join(dir, "kubeconfig")
		writeFile(t, kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: shop}}]
current-context: c
`)
		project := func(forwards ...string) {
			fs := strings.Join(forwards, "\n")
			if fs == "" {
				fs = "    []"
			}
			writeFile(t, filepath.Join(dir, "compose.yaml"), strings.ReplaceAll(strings.Replace(relayProject, "%s", fs, 1), "SHOP", shop))
		}
		project(forwardA, forwardB)
		p := newE2EProject(t, dir, line, "KUBECONFIG="+kubeconfig)
		t.Cleanup(func() { p.devmtls("down") }) // stops the forwards process too

		_, stderr, code := p.devmtls("up", "-d")
		if code != 0 || !strings.Contains(stderr, "for containers at a:443 (relay devmtls-relay-a)") || !strings.Contains(stderr, "for containers at b:8443 (relay devmtls-relay-b)") {
			t.Fatalf("up -d: exit %d\n%s", code, stderr)
		}
		for _, as := range []string{"a", "b"} {
			aliases := relayAliases(t, p, as)
			for _, n := range []string{p.name + "_default", p.name + "_back"} {
				if !slices.Contains(aliases[n], as) {
					t.Errorf("relay %s answers to %v, want %s on %s", as, aliases, as, n)
				}
			}
		}
		overlay := p.must("compose", "overlay")
		if !strings.Contains(overlay, "devmtls-relay-b:") || !strings.Contains(overlay, `- "8443=host.docker.internal:`) {
			t.Errorf("compose overlay does not show the relays:\n%s", overlay)
		}
		if config := p.must("compose", "config"); !strings.Contains(config, "devmtls-relay-a") {
			t.Errorf("compose config does not show the relays:\n%s", config)
		}
		// The name leads through the relay to devmtls's listener, which
		// takes the connection (and ends it: no cluster answers).
		deadline := time.Now().Add(time.Minute)
		for forwardConnections(t, p, "a") == 0 {
			p.devmtls("compose", "exec", "-T", "api", "/shopsvc", "call", "https://a:443/")
			if time.Now().After(deadline) {
				t.Fatal("no connection from api to a:443 reached the forward")
			}
			time.Sleep(time.Second)
		}

		_, stderr, _ = p.devmtls("up", "-d")
		if strings.Contains(stderr, "made the forwards' relay image") {
			t.Errorf("a second up made the relay image again:\n%s", stderr)
		}

		project(forwardA)
		_, stderr, code = p.devmtls("up", "-d")
		if code != 0 || !strings.Contains(stderr, "the relay of forward b, which the project no longer declares") {
			t.Fatalf("up -d without forward b: exit %d\n%s", code, stderr)
		}
		if len(relayAliases(t, p, "b")) != 0 || len(relayAliases(t, p, "a")) == 0 {
			t.Error("after up without forward b, relay b must be gone and relay a stay")
		}

		project()
		p.must("down")
		if left := p.leftovers(); left != "" {
			t.Fatalf("down left containers or networks: %s", left)
		}
	})
}

// relayAliases maps each network of forward as's relay container to its
// aliases there; empty when there is no such container.
func relayAliases(t *testing.T, p *e2eProject, as string) map[string][]string {
	t.Helper()
	ids, err := docker(t, "ps", "-q", "--filter", "label=com.docker.compose.project="+p.name, "--filter", "label=dev.devmtls.relay="+as)
	if err != nil || strings.TrimSpace(ids) == "" {
		return nil
	}
	out, err := docker(t, "inspect", "--format", "{{json .NetworkSettings.Networks}}", strings.Fields(ids)[0])
	if err != nil {
		t.Fatalf("docker inspect: %v\n%s", err, out)
	}
	var networks map[string]struct{ Aliases []string }
	if err := json.Unmarshal([]byte(out), &networks); err != nil {
		t.Fatalf("docker inspect: %v\n%s", err, out)
	}
	aliases := map[string][]string{}
	for n, cfg := range networks {
		aliases[n] = cfg.Aliases
	}
	return aliases
}

// forwardConnections is how many connections forward as has taken.
func forwardConnections(t *testing.T, p *e2eProject, as string) int64 {
	t.Helper()
	st := p.status()
	if st.Forwards == nil {
		t.Fatal("status shows no forwards process")
	}
	for _, f := range st.Forwards.Forwards {
		if f.As == as {
			if f.Relay == nil || f.Relay.State != "running" {
				t.Fatalf("forward %s: relay %+v", as, f.Relay)
			}
			return f.Total
		}
	}
	t.Fatalf("status shows no forward %s", as)
	return 0
}
