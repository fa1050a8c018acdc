package envdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testenv"
)

// canary is a directory outside the environment that must never change.
func canary(t *testing.T) (dir string, unchanged func() bool) {
	t.Helper()
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious"), []byte("do not touch\n"), 0o644)
	os.Chmod(dir, 0o1777)
	fi, _ := os.Stat(dir)
	return dir, func() bool {
		now, err := os.Stat(dir)
		data, _ := os.ReadFile(filepath.Join(dir, "precious"))
		entries, _ := os.ReadDir(dir)
		return err == nil && now.Mode() == fi.Mode() && string(data) == "do not touch\n" && len(entries) == 1
	}
}

func refusedLink(t *testing.T, err error, path string) {
	t.Helper()
	var le *LinkError
	if !errors.As(err, &le) || !errors.Is(err, ErrRefused) || le.Path != path {
		t.Fatalf("got %v, want a LinkError naming %s", err, path)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "rm ") {
		t.Errorf("%q must be one sentence saying to rm it", msg)
	}
}

func TestEnvironmentDirectoryThatIsALinkIsRefused(t *testing.T) {
	outside, unchanged := canary(t)
	env := filepath.Join(t.TempDir(), ".devmtls")
	os.Symlink(outside, env)
	for name, open := range map[string]func(string) (*Dir, error){"Open": Open, "Create": Create} {
		_, err := open(env)
		refusedLink(t, err, env)
		if !unchanged() {
			t.Fatalf("%s changed the link's target", name)
		}
	}
}

func TestDirectoryOthersMayWriteIsRefused(t *testing.T) {
	for _, mode := range []fs.FileMode{0o777, 0o770, 0o702, 0o1777} {
		env := filepath.Join(t.TempDir(), ".devmtls")
		os.Mkdir(env, 0o700)
		os.Chmod(env, mode)
		_, err := Create(env)
		var re *RefusedError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "chmod 700") {
			t.Errorf("mode %o: got %v", mode, err)
		}
		if fi, _ := os.Stat(env); fi.Mode()&fs.ModePerm != mode&fs.ModePerm {
			t.Errorf("mode %o: refused, yet the mode changed to %o", mode, fi.Mode().Perm())
		}
	}
	// Readable by others (not writable) is tightened.
	env := filepath.Join(t.TempDir(), ".devmtls")
	os.Mkdir(env, 0o755)
	d, err := Create(env)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if fi, _ := os.Stat(env); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %o, want 0700", fi.Mode().Perm())
	}
}

func TestDirectoryOfAnotherUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "run the tests as root: only root can give a directory to another user")
	}
	env := filepath.Join(t.TempDir(), ".devmtls")
	os.Mkdir(env, 0o700)
	if err := os.Chown(env, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUDO_UID", "")
	_, err := Open(env)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "belongs to uid 4321") {
		t.Fatalf("got %v", err)
	}
	// Under sudo, the invoking user's own directory is accepted.
	t.Setenv("SUDO_UID", "4321")
	d, err := Open(env)
	if err != nil {
		t.Fatalf("under sudo: %v", err)
	}
	d.Close()
}

func TestOpenAcceptsOnlyGenerationLinks(t *testing.T) {
	const gen = "..2026_01_02_15_04_05.000000001"
	outside, unchanged := canary(t)
	cases := []struct {
		name   string
		link   string // relative to the environment
		target string
		ok     bool
	}{
		{"data link", "..data", gen, true},
		{"next data link", "..data_tmp", gen, true},
		{"visible link", "cert", "..data/cert", true},
		{"visible link in a copy directory", "compose/api/mtls/key+cert", "..data/key+cert", true},
		{"temporary visible link", "..link_tmp.key", "..data/key", true},
		{"visible link to another name", "cert", "..data/key", false},
		{"absolute", "cert", "/etc/passwd", false},
		{"outside", "compose", outside, false},
		{"relative outside", "compose/api", "../../..", false},
		{"data link outside", "..data", "../x", false},
		{"data link to a non-generation", "..data", "services", false},
		{"lock", ".lock", outside + "/lock", false},
		{"generation itself a link", gen, outside, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := filepath.Join(t.TempDir(), ".devmtls")
			if c.link != gen {
				os.MkdirAll(filepath.Join(env, gen), 0o700)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(env, c.link)), 0o700)
			if err := os.Symlink(c.target, filepath.Join(env, c.link)); err != nil {
				t.Fatal(err)
			}
			d, err := Open(env)
			if err == nil {
				d.Close()
			}
			if c.ok && err != nil {
				t.Fatalf("refused devmtls's own link: %v", err)
			}
			if !c.ok {
				refusedLink(t, err, filepath.Join(env, c.link))
			}
			if !unchanged() {
				t.Fatal("the canary changed")
			}
		})
	}
}

func TestOperationsRefuseLinksOnTheWay(t *testing.T) {
	outside, unchanged := canary(t)
	env := filepath.Join(t.TempDir(), ".devmtls")
	os.Mkdir(env, 0o700)
	d, err := Open(env)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Links that appear after Open (checked then) are refused by each
	// operation.
	os.Symlink(outside, filepath.Join(env, "compose"))
	os.Symlink(filepath.Join(outside, "precious"), filepath.Join(env, "state.json"))
	ops := map[string]func() error{
		"WriteFile under":  func() error { return d.WriteFile("compose/x", []byte("x"), 0o600, -1, -1) },
		"WriteFile over":   func() error { return d.WriteFile("state.json", []byte("x"), 0o600, -1, -1) },
		"ReadFile":         func() error { _, err := d.ReadFile("state.json"); return err },
		"MkdirAll":         func() error { return d.MkdirAll("compose/api/mtls", 0o700, -1, -1) },
		"RemoveAll under":  func() error { return d.RemoveAll("compose/precious") },
		"Remove under":     func() error { return d.Remove("compose/precious") },
		"SetMode":          func() error { return d.SetMode("compose", 0o700, -1, -1) },
		"TryLock":          func() error { _, err := d.TryLock("compose/.lock"); return err },
		"ReadDir":          func() error { _, err := d.ReadDir("compose"); return err },
		"OpenFile (log)":   func() error { _, err := d.OpenFile("state.json", os.O_APPEND|os.O_WRONLY, 0); return err },
		"Symlink foreign":  func() error { return d.Symlink("/etc", "x") },
		"Rename onto link": func() error { return d.Rename("nothing", "compose/x") },
	}
	for name, op := range ops {
		if err := op(); err == nil {
			t.Errorf("%s followed a link", name)
		}
		if !unchanged() {
			t.Fatalf("%s changed the canary", name)
		}
	}
}

func TestLockExcludesWithinOneProcess(t *testing.T) {
	env := t.TempDir()
	d, err := Open(env)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := d.TryLock(".lock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.TryLock(".lock"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v", err)
	}
	if held, err := d.Held(".lock"); !held || err != nil {
		t.Fatalf("Held = %v, %v", held, err)
	}
	_, err = d.LockWait(t.Context(), ".lock", 30*time.Millisecond)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(env, ".lock")) {
		t.Fatalf("LockWait: %v", err)
	}
	l.Unlock()
	if held, _ := d.Held(".lock"); held {
		t.Fatal("still held after Unlock")
	}
}

func TestWriteFileIsPrivateAndAtomic(t *testing.T) {
	env := t.TempDir()
	d, err := Open(env)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.WriteFile("key", []byte("secret"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("cert", []byte("public"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"key": 0o600, "cert": 0o644} {
		if fi, err := os.Stat(filepath.Join(env, name)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %o", name, fi.Mode(), err, want)
		}
	}
	entries, _ := os.ReadDir(env)
	if len(entries) != 2 {
		t.Errorf("temporary files left: %v", entries)
	}
}
