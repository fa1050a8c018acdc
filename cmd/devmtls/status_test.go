package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/hybrid"
	"github.com/devmtls/devmtls/portforward"
)

// TestStatusWithoutDocker: with the Docker daemon unreachable, status still
// reports the rest (credentials, forwards) and exits 0, naming Docker as
// unavailable; only a project named with -f, whose containers were asked
// for, makes it exit 1.
func TestStatusWithoutDocker(t *testing.T) {
	root := t.TempDir()
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(root, "no-daemon.sock"))
	host := filepath.Join(root, "host")
	t.Chdir(t.TempDir())
	unsetDiscoveryEnv(t)
	mustCLI(t, "--dir", host, "certs")

	stdout, stderr, code := cli(t, "--dir", host, "status")
	if code != 0 || !strings.Contains(stdout, "Docker:       unavailable: the Docker daemon is not running") || !strings.Contains(stdout, "Credentials:  shared, ecdsa-p256") {
		t.Errorf("without a project: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = cli(t, "--dir", host, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || code != 0 || st.Docker.Reachable || st.Docker.Error == "" || st.Credentials == nil {
		t.Errorf("--json: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}

	project := filepath.Join(root, "shop")
	writeFile(t, filepath.Join(project, "compose.yaml"), "services:\n  api:\n    image: x\n")
	t.Chdir(project)
	stdout, stderr, code = cli(t, "status")
	if code != 0 || !strings.Contains(stdout, "Docker:       unavailable, so the containers are not shown: ") {
		t.Errorf("in a project found by discovery: exit %d\n%s%s", code, stdout, stderr)
	}
	_, stderr, code = cli(t, "status", "-f", "compose.yaml")
	if code != exitError || !strings.Contains(stderr, "devmtls: cannot show the containers of project shop: the Docker daemon is not running") {
		t.Errorf("with -f: exit %d\n%s", code, stderr)
	}
}

// TestCertsSummaryNamesEachFile: the summary's files line names files and,
// in ca mode, each service's directory; in shared mode the services use the
// top-level files, so they add nothing to it.
func TestCertsSummaryNamesEachFile(t *testing.T) {
	project := t.TempDir()
	writeFile(t, filepath.Join(project, "compose.yaml"), "services:\n  api:\n    image: x\n  db:\n    image: x\n    x-devmtls: {formats: [postgres]}\n")
	t.Chdir(project)
	unsetDiscoveryEnv(t)
	if out := mustCLI(t, "certs"); !strings.Contains(out, "  files:    cert, key, ca, key+cert\n") {
		t.Errorf("shared mode:\n%s", out)
	}
	if out := mustCLI(t, "certs", "--mode", "ca"); !strings.Contains(out, "  files:    cert, key, ca, key+cert, services/api/, services/db/\n") {
		t.Errorf("ca mode:\n%s", out)
	}
}

// TestStatusShowsConnectionsPerPod: a spreading forward lists each pod with
// its open and total connections; a forward without counts shows its pod.
func TestStatusShowsConnectionsPerPod(t *testing.T) {
	var b strings.Builder
	printForwardsStatus(&b, statusJSON{Forwards: &hybrid.State{PID: 42, Forwards: []hybrid.ForwardState{
		{As: "orders", Target: "svc/orders", Namespace: "shop", Host: []string{"127.0.0.1:41000"},
			Pods: []portforward.PodStats{{Pod: "orders-a", Open: 1, Total: 7}, {Pod: "orders-b", Open: 0, Total: 6}}},
		{As: "db", Target: "pod/db-0", Namespace: "shop", Host: []string{"127.0.0.1:41001"}, Pod: "db-0"},
	}}})
	out := b.String()
	for _, want := range []string{"PODS (OPEN/TOTAL)", "orders-a 1/7, orders-b 0/6", "db-0"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
}

// TestStatusFlagsStaleForwards: a forward serving a dev certificate other
// than the environment's is marked stale, in the JSON and as STALE in the
// table; one serving the current certificate, or one that has not said what
// it serves, is not.
func TestStatusFlagsStaleForwards(t *testing.T) {
	const current, old = "aa:bb:cc:dd:ee:ff:00:11", "11:22:33:44:55:66:77:88"
	st := &hybrid.State{PID: 42, Forwards: []hybrid.ForwardState{
		{As: "pricing", Target: "svc/pricing", Namespace: "shop", DevFingerprint: old},
		{As: "orders", Target: "svc/orders", Namespace: "shop", DevFingerprint: current},
		{As: "db", Target: "pod/db-0", Namespace: "shop"},
	}}
	markStaleForwards(st, &certs.Credentials{Fingerprint: current})
	for i, want := range []bool{true, false, false} {
		if f := st.Forwards[i]; f.Stale != want {
			t.Errorf("forward %s serving %q with the environment at %q: Stale = %v, want %v", f.As, f.DevFingerprint, current, f.Stale, want)
		}
	}

	var b strings.Builder
	printForwardsStatus(&b, statusJSON{Forwards: st})
	for _, line := range strings.Split(b.String(), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == "Forwards:" || fields[0] == "FORWARD" {
			continue
		}
		if stale := strings.Contains(line, "STALE"); stale != (fields[0] == "pricing") {
			t.Errorf("forward %s: STALE shown = %v, want %v:\n%s", fields[0], stale, fields[0] == "pricing", b.String())
		}
	}
	if !strings.Contains(b.String(), "pricing") || !strings.Contains(b.String(), "orders") {
		t.Errorf("the table does not list both forwards:\n%s", b.String())
	}

	// Without the environment's credentials there is nothing to compare with.
	fresh := &hybrid.State{Forwards: []hybrid.ForwardState{{As: "pricing", DevFingerprint: old}}}
	markStaleForwards(fresh, nil)
	if fresh.Forwards[0].Stale {
		t.Error("a forward is marked stale although the environment has no credentials")
	}
}
