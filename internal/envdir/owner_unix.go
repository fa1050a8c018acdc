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
		return &RefusedError{Path: p, Problem: fmt.Sprintf("belongs to uid %d, not to you (uid %d), and devmtls keeps credentials only in a directory of your own", st.Uid, uid),
			Fix: "remove it if you trust its contents to nobody, or choose another environment directory with --dir"}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &RefusedError{Path: p, Problem: fmt.Sprintf("may be written by other users (mode %04o), so anything in it could have been put there by them", perm),
			Fix: "check its contents, then run `chmod 700 " + shellQuote(p) + "`"}
	}
	return nil
}
