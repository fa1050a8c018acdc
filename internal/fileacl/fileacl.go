// Package fileacl keeps secret files readable by their owner alone on Windows,
// where the permission bits devmtls sets (0600) mean nothing: a new file
// inherits its directory's access control list, which usually lets every
// administrator and often every user of the machine read it.
package fileacl

import (
	"fmt"
	"strings"

	"github.com/devmtls/devmtls/internal/digits"
)

// isSID reports whether sid has the string form of a Windows security
// identifier (S-1-<authority>-<sub-authorities>, i.e. ^S-1-[0-9]+(-[0-9]+)+$),
// the only thing OwnerOnlySDDL inserts into the descriptor it builds. Checked
// by hand: a package-level regexp would be compiled at every devmtls start.
func isSID(sid string) bool {
	rest, ok := strings.CutPrefix(sid, "S-1-")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "-")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if !digits.Only(p) {
			return false
		}
	}
	return true
}

// OwnerOnlySDDL is the security descriptor, in SDDL, of a file that only the
// user with SID sid may use: a discretionary ACL with one entry granting that
// user full access ("A;;FA;;;SID"), marked protected ("P") so that nothing is
// inherited from the directory.
func OwnerOnlySDDL(sid string) (string, error) {
	if !isSID(sid) {
		return "", fmt.Errorf("%q is not a Windows security identifier", sid)
	}
	return "D:P(A;;FA;;;" + sid + ")", nil
}
