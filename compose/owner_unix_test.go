//go:build unix

package compose

import (
	"os"
	"syscall"
	"testing"
)

// fileOwner returns the uid and gid that own fi.
func fileOwner(t *testing.T, fi os.FileInfo) (uid, gid int) {
	t.Helper()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("%s: no owner in %T", fi.Name(), fi.Sys())
	}
	return int(st.Uid), int(st.Gid)
}
