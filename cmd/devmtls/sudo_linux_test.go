package main

import (
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/devmtls/devmtls/internal/testenv"
)

// sudoTestUser is the normal user TestSudoLeavesTheEnvironmentUsable runs
// devmtls as (created when missing, removed afterwards).
const sudoTestUser = "devmtls-sudo-test"

// normalUser returns the uid and gid of sudoTestUser, creating the account.
func normalUser(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(sudoTestUser)
	if err != nil {
		useradd := testenv.LookPath(t, "useradd", "apt-get install passwd")
		if out, err := exec.Command(useradd, "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", sudoTestUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v\n%s", err, out)
		}
		t.Cleanup(func() { exec.Command("userdel", sudoTestUser).Run() })
		if u, err = user.Lookup(sudoTestUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// TestSudoLeavesTheEnvironmentUsable runs the real binary as root under
// sudo (SUDO_UID/SUDO_GID, as sudo sets them) in a normal user's project,
// then as that user through setpriv: the user owns everything the root run
// created and can keep working; and where root's files are left over (an
// older devmtls), the user's run names the file and the fix.
func TestSudoLeavesTheEnvironmentUsable(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (to run devmtls under sudo and as another user)", "run the tests as root, e.g. in the CI container")
	}
	setpriv := testenv.LookPath(t, "setpriv", "apt-get install util-linux")
	uid, gid := normalUser(t)
	base := t.TempDir()
	// The user must reach the binary and the project.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "devmtls")
	data, err := os.ReadFile(devmtlsBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	project := filepath.Join(base, "project")
	if err := os.Mkdir(project, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(project, uid, gid); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(project, ".devmtls")
	noSudo := func() []string {
		var e []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SUDO_") && !strings.HasPrefix(kv, "DEVMTLS_") {
				e = append(e, kv)
			}
		}
		return append(e, "HOME="+project)
	}
	asRoot := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--dir", env}, args...)...)
		cmd.Dir = project
		cmd.Env = append(noSudo(), "SUDO_UID="+strconv.Itoa(uid), "SUDO_GID="+strconv.Itoa(gid), "SUDO_USER="+sudoTestUser)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sudo devmtls %v: %v\n%s", args, err, out)
		}
	}
	asUser := func(args ...string) (string, error) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--init-groups", "--", bin, "--dir", env}, args...)...)
		cmd.Dir = project
		cmd.Env = append(noSudo(), "USER="+sudoTestUser)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	asRoot("certs")
	asRoot("certs", "rotate")
	var entries int
	err = filepath.WalkDir(env, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s belongs to %d:%d after sudo devmtls, want the user's %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		entries++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if entries < 5 {
		t.Fatalf("only %d entries in %s: devmtls certs wrote nothing?", entries, env)
	}
	for _, args := range [][]string{{"certs"}, {"certs", "rotate"}, {"env"}} {
		if out, err := asUser(args...); err != nil {
			t.Fatalf("devmtls %v as the user after sudo devmtls: %v\n%s", args, err, out)
		}
	}

	// What an older devmtls left: root's lock file, unreadable to the user.
	lock := filepath.Join(env, ".lock")
	if err := os.Chown(lock, 0, 0); err != nil {
		t.Fatal(err)
	}
	out, err := asUser("certs", "rotate")
	if err == nil {
		t.Fatalf("devmtls certs rotate succeeded with root's %s:\n%s", lock, out)
	}
	for _, want := range []string{lock, "sudo chown -R $USER " + env} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
}
