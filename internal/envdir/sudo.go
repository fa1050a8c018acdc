package envdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Under sudo (`sudo devmtls up`, needed to give keys to container users),
// devmtls runs as root in the invoking user's environment directory. What it
// creates there is given to that user, so a later run without sudo can still
// open its lock, generations and forwards state. An explicit owner a caller
// asks for (a container user's copies) is kept.

// adoptSudoUser makes the invoking user the owner of what d creates, when
// devmtls runs as root under sudo and that user owns the directory.
func (d *Dir) adoptSudoUser(dirInfo fs.FileInfo) {
	d.uid, d.gid = -1, -1
	uid, gid, ok := sudoUser()
	if !ok {
		return
	}
	if owner, known := fileOwner(dirInfo); known && owner == uid {
		d.uid, d.gid = uid, gid
	}
}

// owner is the owner to give a new entry: the caller's when it names one
// (uid >= 0), else the sudo user's (or -1: the process's own).
func (d *Dir) owner(uid, gid int) (int, int) {
	if uid >= 0 {
		return uid, gid
	}
	return d.uid, d.gid
}

// openCreating opens name with flag; a file it creates is given to the sudo
// user (see adoptSudoUser), through the open handle.
func (d *Dir) openCreating(name string, flag int, perm fs.FileMode) (*os.File, error) {
	existed := true
	if flag&os.O_CREATE != 0 && d.uid >= 0 {
		_, err := d.root.Lstat(name)
		existed = !errors.Is(err, fs.ErrNotExist)
	}
	f, err := d.root.OpenFile(name, flag, perm)
	if err != nil || existed {
		return f, err
	}
	if err := f.Chown(d.uid, d.gid); err != nil {
		f.Close()
		return nil, fmt.Errorf("give %s to %d:%d: %w", d.Path(name), d.uid, d.gid, err)
	}
	return f, nil
}

// OwnerError reports an entry of the environment that devmtls may not open
// because another user owns it — typically root, after a run under sudo by an
// older devmtls. It unwraps to the permission error.
type OwnerError struct {
	Path string // the entry owned by someone else
	UID  int    // its owner
	Dir  string // the environment directory, for the fix
	Err  error
}

func (e *OwnerError) Error() string {
	return fmt.Sprintf("%s belongs to uid %d, not to you (uid %d), so devmtls cannot use it (an earlier run under sudo left it); give the environment back to yourself with `sudo chown -R $USER %s`",
		e.Path, e.UID, os.Geteuid(), shellQuote(e.Dir))
}

func (e *OwnerError) Unwrap() error { return e.Err }

// explain turns a permission error met on name into an OwnerError when an
// entry on its way (name included) belongs to another user; any other error
// is returned as it is.
func (d *Dir) explain(name string, err error) error {
	var oe *OwnerError
	if err == nil || !errors.Is(err, fs.ErrPermission) || errors.As(err, &oe) {
		return err
	}
	me := os.Geteuid()
	if me == 0 || validName(name) != nil {
		return err
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fi, lerr := d.root.Lstat(prefix)
		if lerr != nil {
			break
		}
		if uid, ok := fileOwner(fi); ok && uid != me {
			return &OwnerError{Path: d.Path(prefix), UID: uid, Dir: d.abs, Err: err}
		}
	}
	return err
}
