package composetest

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/hybrid/relay"
	"github.com/devmtls/devmtls/internal/testenv"
)

// TestEnsureImageOnce makes a relay image on the real engine from a
// dynamically linked executable, runs it, and makes sure a second call
// makes nothing. (The libraries it finds are checked in hybrid/relay.)
func TestEnsureImageOnce(t *testing.T) {
	testenv.LookPath(t, "docker", "install Docker Engine (apt-get install docker.io) and start dockerd")
	goBin := testenv.LookPath(t, "go", "install Go")
	ctx := context.Background()
	docker, err := compose.ConnectDocker(ctx)
	if err != nil {
		testenv.Missing(t, "the Docker daemon", err.Error())
	}
	defer docker.Close()
	exe := filepath.Join(t.TempDir(), "relayhelper")
	build := exec.Command(goBin, "build", "-o", exe, ".")
	build.Dir, build.Env = filepath.Join("testdata", "relayhelper"), append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the helper: %v\n%s", err, out)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	dynamic := false
	for _, p := range f.Progs {
		dynamic = dynamic || p.Type == elf.PT_INTERP
	}
	f.Close()
	if !dynamic {
		t.Fatal("the helper came out statically linked; the test needs a dynamic one (is cgo available?)")
	}

	ref, made, err := relay.EnsureImage(ctx, docker, exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "--force", ref).Run() })
	if !made || !strings.HasPrefix(ref, relay.Repository+":") {
		t.Fatalf("first call: %s made=%v", ref, made)
	}
	out, err := exec.Command("docker", "run", "--rm", "--network", "none", ref).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "relay image ok [relay] 65534 <nil>") {
		t.Fatalf("running the image: %v\n%s", err, out)
	}
	labels, err := exec.Command("docker", "image", "inspect", "-f", "{{index .Config.Labels \""+relay.ImageLabel+"\"}}", ref).Output()
	if err != nil || strings.TrimSpace(string(labels)) != "1" {
		t.Errorf("image label: %q %v", labels, err)
	}
	again, made, err := relay.EnsureImage(ctx, docker, exe)
	if err != nil || made || again != ref {
		t.Fatalf("second call: %s made=%v %v; want %s made nothing", again, made, err, ref)
	}
}
