package relay

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/testenv"
)

func TestParseLdd(t *testing.T) {
	out := []byte(`	linux-vdso.so.1 (0x00007ffd5b1f2000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8344f8f000)
	libresolv.so.2 => not found
	/lib64/ld-linux-x86-64.so.2 (0x00007f8345184000)
`)
	if got := parseLdd(out); !reflect.DeepEqual(got, []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}) {
		t.Fatalf("got %v", got)
	}
}

// The root filesystem holds each file at its path with its mode, under
// root-owned directories, links followed.
func TestWriteRootfs(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libreal.so")
	if err := os.WriteFile(lib, []byte("ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(lib, filepath.Join(dir, "liblink.so")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := writeRootfs(&buf, []imageFile{
		{path: "devmtls", src: lib, mode: 0o555},
		{path: "lib/x86_64-linux-gnu/liblink.so", src: filepath.Join(dir, "liblink.so"), mode: 0o555},
		{path: "etc/nsswitch.conf", data: []byte(nsswitch), mode: 0o444},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got[h.Name] = string(rune(h.Typeflag)) + " " + string(data)
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s is owned by %d:%d", h.Name, h.Uid, h.Gid)
		}
		if h.Name == "devmtls" && h.Mode != 0o555 {
			t.Errorf("devmtls has mode %o", h.Mode)
		}
	}
	want := map[string]string{
		"etc/": "5 ", "lib/": "5 ", "lib/x86_64-linux-gnu/": "5 ",
		"devmtls": "0 ELF", "lib/x86_64-linux-gnu/liblink.so": "0 ELF", "etc/nsswitch.conf": "0 " + nsswitch,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// helperProgram is built dynamically linked (the net package's cgo
// resolver), as devmtls is by default, so its image needs the loader and
// libc that ldd names.
const helperProgram = `package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	_, err := net.LookupHost("localhost")
	fmt.Println("relay image ok", os.Args[1:], os.Getuid(), err)
}
`

// TestEnsureImageOnce makes a relay image on the real engine from a
// dynamically linked executable, runs it, and makes sure a second call
// makes nothing.
func TestEnsureImageOnce(t *testing.T) {
	testenv.LookPath(t, "docker", "install Docker Engine (apt-get install docker.io) and start dockerd")
	goBin := testenv.LookPath(t, "go", "install Go")
	ctx := context.Background()
	docker, err := compose.ConnectDocker(ctx)
	if err != nil {
		testenv.Missing(t, "the Docker daemon", err.Error())
	}
	defer docker.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(helperProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module relayhelper\n\ngo 1.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "relayhelper")
	build := exec.Command(goBin, "build", "-o", exe, ".")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the helper: %v\n%s", err, out)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	dynamic := interpreter(f) != ""
	f.Close()
	if !dynamic {
		t.Fatal("the helper came out statically linked; the test needs a dynamic one (is cgo available?)")
	}

	ref, made, err := EnsureImage(ctx, docker, exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "--force", ref).Run() })
	if !made || !strings.HasPrefix(ref, Repository+":") {
		t.Fatalf("first call: %s made=%v", ref, made)
	}
	out, err := exec.Command("docker", "run", "--rm", "--network", "none", ref).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "relay image ok [relay] 65534 <nil>") {
		t.Fatalf("running the image: %v\n%s", err, out)
	}
	labels, err := exec.Command("docker", "image", "inspect", "-f", "{{index .Config.Labels \""+ImageLabel+"\"}}", ref).Output()
	if err != nil || strings.TrimSpace(string(labels)) != "1" {
		t.Errorf("image label: %q %v", labels, err)
	}
	again, made, err := EnsureImage(ctx, docker, exe)
	if err != nil || made || again != ref {
		t.Fatalf("second call: %s made=%v %v; want %s made nothing", again, made, err, ref)
	}
	libs, err := sharedLibraries(exe)
	if err != nil || len(libs) < 2 || !slices.ContainsFunc(libs, func(l string) bool { return strings.Contains(l, "libc.so") }) {
		t.Errorf("the libraries of a dynamic executable: %v %v", libs, err)
	}
}
