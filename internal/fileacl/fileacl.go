// Package fileacl keeps secret files readable by their owner alone on Windows,
// where the permission bits devmtls sets (0600) mean nothing: a new file
// inherits its directory's access control list, which usually lets every
// administrator and often every user of the machine read it.
package fileacl

import (
	"fmt"
	"regexp"
)

// sidPattern is the string form of a Windows security identifier
// (S-1-<authority>-<sub-authorities>), the only thing OwnerOnlySDDL inserts
// into the descriptor it builds.
var sidPattern = regexp.MustCompile(`^S-1-[0-9]+(-[0-9]+)+$`)

// OwnerOnlySDDL is the security descriptor, in SDDL, of a file that only the
// user with SID sid may use: a discretionary ACL with one entry granting that
// user full access ("A;;FA;;;SID"), marked protected ("P") so that nothing is
// inherited from the directory.
func OwnerOnlySDDL(sid string) (string, error) {
	if !sidPattern.MatchString(sid) {
		return "", fmt.Errorf("%q is not a Windows security identifier", sid)
	}
	return "D:P(A;;FA;;;" + sid + ")", nil
}
