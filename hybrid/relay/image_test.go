package relay

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

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

// buildHelper builds helperProgram, dynamically linked.
func buildHelper(t *testing.T) string {
	t.Helper()
	goBin := testenv.LookPath(t, "go", "install Go")
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
	return exe
}

// TestSharedLibrariesOfADynamicExecutable finds the loader and libc a
// dynamically linked executable needs in its image. Building and running
// the image on the real engine is test/compose's TestEnsureImageOnce.
func TestSharedLibrariesOfADynamicExecutable(t *testing.T) {
	exe := buildHelper(t)
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	dynamic := interpreter(f) != ""
	f.Close()
	if !dynamic {
		t.Fatal("the helper came out statically linked; the test needs a dynamic one (is cgo available?)")
	}
	libs, err := sharedLibraries(exe)
	if err != nil || len(libs) < 2 || !slices.ContainsFunc(libs, func(l string) bool { return strings.Contains(l, "libc.so") }) {
		t.Errorf("the libraries of a dynamic executable: %v %v", libs, err)
	}
}
