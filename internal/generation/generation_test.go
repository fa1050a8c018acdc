package generation

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/devmtls/devmtls/internal/envdir"
)

func newWriter(t *testing.T, base string) (*Writer, string) {
	t.Helper()
	env := t.TempDir()
	d, err := envdir.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &Writer{Dir: d, Base: base, UID: -1, GID: -1}, filepath.Join(env, filepath.FromSlash(base))
}

func write(t *testing.T, w *Writer, files []File) string {
	t.Helper()
	gen, err := w.Prepare(files)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Switch(gen, Visible(files), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.RemoveExcept(gen); err != nil {
		t.Fatal(err)
	}
	return gen
}

func TestGenerationsSwitchWithOneRename(t *testing.T) {
	w, dir := newWriter(t, "compose/api/mtls")
	first := write(t, w, []File{{"cert", []byte("c1"), 0o644}, {"key", []byte("k1"), 0o600}, {"services/api/cert", []byte("s1"), 0o644}})

	// A reader that resolved the first generation holds its directory.
	held, err := os.OpenRoot(filepath.Join(dir, envdir.DataLink))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	second := write(t, w, []File{{"cert", []byte("c2"), 0o644}, {"key", []byte("k2"), 0o600}, {"tls.crt", []byte("t2"), 0o644}})
	if first == second {
		t.Fatal("the second generation reused the first's name")
	}
	for name, want := range map[string]string{"cert": "c2", "key": "k2", "tls.crt": "t2"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
		if target, _ := os.Readlink(filepath.Join(dir, name)); target != "..data/"+name {
			t.Errorf("%s -> %q", name, target)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %o", fi.Mode().Perm())
	}
	// The name the new generation lacks is gone; the old generation too.
	if _, err := os.Lstat(filepath.Join(dir, "services")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("services still visible: %v", err)
	}
	if gens, _ := w.Generations(); !slices.Equal(gens, []string{second}) {
		t.Errorf("generations %v, want only %s", gens, second)
	}
	// The reader of the old generation gets ENOENT, never a file of the new.
	if data, err := held.ReadFile("key"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading key from the removed generation: %q, %v; want ENOENT", data, err)
	}
}

func TestForeignFileInTheWayIsRefusedUnlessOwned(t *testing.T) {
	w, dir := newWriter(t, ".")
	os.WriteFile(filepath.Join(dir, "cert"), []byte("mine"), 0o644)
	files := []File{{"cert", []byte("c"), 0o644}}
	gen, err := w.Prepare(files)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Switch(gen, Visible(files), nil)
	if !errors.Is(err, envdir.ErrRefused) {
		t.Fatalf("got %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cert")); string(got) != "mine" {
		t.Fatal("the foreign file was replaced")
	}
	// A file devmtls wrote itself (an older layout) is replaced in one rename.
	if err := w.Switch(gen, Visible(files), func(string, bool) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cert")); string(got) != "c" {
		t.Fatalf("cert = %q", got)
	}
}

func TestLinkedAndCurrent(t *testing.T) {
	w, dir := newWriter(t, ".")
	if cur, err := w.Current(); cur != "" || err != nil {
		t.Fatalf("Current of an empty directory = %q, %v", cur, err)
	}
	files := []File{{"cert", []byte("c"), 0o644}}
	gen := write(t, w, files)
	if !w.Linked(gen, []string{"cert"}) {
		t.Fatal("not linked after Switch")
	}
	os.Remove(filepath.Join(dir, "cert"))
	if w.Linked(gen, []string{"cert"}) {
		t.Fatal("linked without its visible link")
	}
	os.Remove(filepath.Join(dir, envdir.DataLink))
	os.Symlink("/etc", filepath.Join(dir, envdir.DataLink))
	if _, err := w.Current(); !errors.Is(err, envdir.ErrRefused) {
		t.Fatalf("Current with ..data -> /etc: %v", err)
	}
}
