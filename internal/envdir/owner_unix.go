//go:build unix

package envdir

import (
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"
)

// checkOwner refuses an environment directory that is not the user's own or
// that someone else may write to: anything in it could have been put there by
// that other user. Under sudo, the invoking user's directory is accepted too,
// since `sudo devmtls up` (needed to give keys to container users) works on
// that user's project.
func checkOwner(p string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	uid := os.Geteuid()
	owners := []int{uid}
	if uid == 0 {
		if sudo, err := strconv.Atoi(os.Getenv("SUDO_UID")); err == nil {
			owners = append(owners, sudo)
		}
	}
	if !slices.Contains(owners, int(st.Uid)) {
		fix := "remove it if you trust its contents to nobody, or choose another environment directory with --dir"
		if st.Uid == 0 {
			// Root's: an earlier run under sudo created it.
			fix = "if an earlier `sudo devmtls` created it, give it back to yourself with `sudo chown -R $USER " + shellQuote(p) + "`; else " + fix
		}
		return &RefusedError{Path: p, Problem: fmt.Sprintf("belongs to uid %d, not to you (uid %d), and devmtls keeps credentials only in a directory of your own", st.Uid, uid),
			Fix: fix}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &RefusedError{Path: p, Problem: fmt.Sprintf("may be written by other users (mode %04o), so anything in it could have been put there by them", perm),
			Fix: "check its contents, then run `chmod 700 " + shellQuote(p) + "`"}
	}
	return nil
}

// fileOwner is the uid owning fi.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}

// sudoUser is the user who ran `sudo devmtls` (SUDO_UID, SUDO_GID), when
// devmtls runs as root.
func sudoUser() (uid, gid int, ok bool) {
	if os.Geteuid() != 0 {
		return -1, -1, false
	}
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return -1, -1, false
	}
	return uid, gid, true
}
