//go:build unix

package envdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/devmtls/devmtls/internal/testenv"
)

// sudoUID is a uid:gid without a passwd entry standing for the user who ran
// sudo; only file ownership is checked here, so no process runs as it.
const sudoUID = 64992

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// TestUnderSudoNewEntriesBelongToTheUser runs as root with SUDO_UID set, as
// `sudo devmtls up` does, in a directory that user owns: everything created
// goes to that user through the open handles, except what a caller gives to
// an explicit owner.
func TestUnderSudoNewEntriesBelongToTheUser(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (to change file owners)", "run the tests as root, e.g. in the CI container")
	}
	id := strconv.Itoa(sudoUID)
	t.Setenv("SUDO_UID", id)
	t.Setenv("SUDO_GID", id)
	project := t.TempDir()
	if err := os.Chown(project, sudoUID, sudoUID); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(project, ".devmtls")
	d, err := Create(env) // created by root: given to the user too
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.MkdirAll("forwards/state", 0o700, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("forwards/state/pid", []byte("1\n"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	f, err := d.OpenFile("forwards/log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	l, err := d.TryLock(".lock")
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	gen := "..2026_12_01_18_00_00.000000001"
	if err := d.MkdirAll(gen, 0o700, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := d.Symlink(gen, DataLink); err != nil {
		t.Fatal(err)
	}
	// A compose copy for a container running as root stays root's.
	if err := d.WriteFile("copy", []byte("x"), 0o600, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".", "forwards", "forwards/state", "forwards/state/pid", "forwards/log", ".lock", gen, DataLink} {
		if uid, gid := owner(t, filepath.Join(env, name)); uid != sudoUID || gid != sudoUID {
			t.Errorf("%s belongs to %d:%d, want the sudo user %d:%d", name, uid, gid, sudoUID, sudoUID)
		}
	}
	if uid, _ := owner(t, filepath.Join(env, "copy")); uid != 0 {
		t.Errorf("copy belongs to uid %d, want the explicit owner 0", uid)
	}
}

// TestNotUnderSudoRootKeepsItsFiles: root without SUDO_UID in its own
// directory creates root's files, as before.
func TestNotUnderSudoRootKeepsItsFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (to change file owners)", "run the tests as root, e.g. in the CI container")
	}
	t.Setenv("SUDO_UID", "")
	t.Setenv("SUDO_GID", "")
	env := filepath.Join(t.TempDir(), ".devmtls")
	d, err := Create(env)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.WriteFile("f", nil, 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	if uid, _ := owner(t, filepath.Join(env, "f")); uid != 0 {
		t.Errorf("f belongs to %d, want root", uid)
	}
}

// TestOwnerErrorNamesTheFileAndTheFix checks the message itself; the
// situation (a non-root run meeting root's files) is exercised for real in
// cmd/devmtls's TestSudoLeavesTheEnvironmentUsable.
func TestOwnerErrorNamesTheFileAndTheFix(t *testing.T) {
	err := error(&OwnerError{Path: "/p/.devmtls/.lock", UID: 0, Dir: "/p/.devmtls", Err: fs.ErrPermission})
	msg := err.Error()
	for _, want := range []string{"/p/.devmtls/.lock", "uid 0", "sudo chown -R $USER /p/.devmtls"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("an OwnerError must unwrap to the permission error")
	}
}
