//go:build windows

package envdir

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/windows"
)

// checkOwner refuses an environment directory owned by another user: anything
// in it could have been put there by that user. A directory an elevated
// administrator created belongs to the Administrators group and is accepted
// from a member of it.
func checkOwner(p string, fi fs.FileInfo) error {
	sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("read the owner of %s: %w", p, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("read the owner of %s: %w", p, err)
	}
	token := windows.GetCurrentProcessToken()
	user, err := token.GetTokenUser()
	if err != nil {
		return fmt.Errorf("find the current user: %w", err)
	}
	if owner.Equals(user.User.Sid) {
		return nil
	}
	if admins, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid); err == nil && owner.Equals(admins) {
		if member, err := windows.Token(0).IsMember(admins); err == nil && member {
			return nil
		}
	}
	return &RefusedError{Path: p, Problem: fmt.Sprintf("belongs to %s, not to you, and devmtls keeps credentials only in a directory of your own", owner),
		Fix: "remove it if you trust its contents to nobody, or choose another environment directory with --dir"}
}

// fileOwner has no numeric owner to report on this platform.
func fileOwner(fs.FileInfo) (int, bool) { return -1, false }

// sudoUser: there is no sudo on this platform.
func sudoUser() (uid, gid int, ok bool) { return -1, -1, false }
