// Package envdir is the one way devmtls touches its environment directory
// (.devmtls). That directory may come from a cloned repository, so it is
// untrusted input: every operation goes through one os.Root opened on it, so no
// name can resolve outside it; a symbolic link devmtls did not write is refused
// rather than followed (see checkTree); and a directory another user owns or
// may write to is refused before anything is read from it.
//
// Names given to a Dir are slash-separated and relative to it.
package envdir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/devmtls/devmtls/internal/atomicfile"
	"github.com/devmtls/devmtls/internal/fileacl"
)

// Dir is an open environment directory.
type Dir struct {
	root *os.Root
	abs  string
	// uid, gid own what devmtls creates when it runs as root under sudo in
	// the invoking user's directory (see adoptSudoUser); -1 otherwise.
	uid, gid int
}

// Open opens an existing environment directory, after checking that it is a
// real directory (not a link) that the user owns and nobody else may write
// to, and that it holds no link devmtls did not write (checkTree). An error
// wrapping fs.ErrNotExist means there is none.
func Open(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, err
	}
	if err := checkEntry(abs, fi); err != nil {
		target, _ := os.Readlink(abs)
		return nil, &LinkError{Path: abs, Target: target}
	}
	if !fi.IsDir() {
		return nil, &RefusedError{Path: abs, Problem: "is not a directory", Fix: "move it away, or choose another environment directory with --dir"}
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	// The name was checked above; make sure the directory opened is the
	// one checked, not something swapped in since.
	opened, err := root.Stat(".")
	if err != nil || !os.SameFile(fi, opened) {
		root.Close()
		return nil, &RefusedError{Path: abs, Problem: "changed while devmtls opened it", Fix: "run devmtls again"}
	}
	if err := checkOwner(abs, opened); err != nil {
		root.Close()
		return nil, err
	}
	d := &Dir{root: root, abs: abs}
	d.adoptSudoUser(opened)
	if err := d.checkTree(); err != nil {
		root.Close()
		return nil, err
	}
	return d, nil
}

// Create opens the environment directory for writing, creating it (0700) when
// missing, and restricts it to its owner when it is wider — only once Open
// has accepted it: the user's own, nobody else could have written to it, no
// foreign link in it.
func Create(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("create environment directory %s: %w", abs, err)
	}
	err = os.Mkdir(abs, 0o700)
	created := err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		// A read-only file system reports EROFS even for an existing
		// directory; Open decides.
		if _, lerr := os.Lstat(abs); lerr != nil {
			return nil, fmt.Errorf("create environment directory %s: %w", abs, err)
		}
	}
	d, err := Open(abs)
	if err != nil {
		return nil, err
	}
	if created {
		if err := d.giveNewDirToSudoUser(); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := d.restrict(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// giveNewDirToSudoUser gives the environment directory devmtls has just
// created to the user who ran sudo, when the directory it was created in is
// theirs (their project), so they own their environment as if they had
// created it themselves.
func (d *Dir) giveNewDirToSudoUser() error {
	uid, gid, ok := sudoUser()
	if !ok {
		return nil
	}
	parent, err := os.Stat(filepath.Dir(d.abs))
	if err != nil {
		return nil
	}
	if owner, known := fileOwner(parent); !known || owner != uid {
		return nil
	}
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("give environment directory %s to %d:%d: %w", d.abs, uid, gid, err)
	}
	d.uid, d.gid = uid, gid
	return nil
}

// restrict makes the directory 0700 when it is not already, through the open
// handle so the change lands on the directory that was checked.
func (d *Dir) restrict() error {
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !modeBitsControlAccess || fi.Mode().Perm() == 0o700 {
		return nil
	}
	if err := f.Chmod(0o700); err != nil {
		return fmt.Errorf("restrict environment directory %s to its owner: %w", d.abs, err)
	}
	return nil
}

// Close releases the handle.
func (d *Dir) Close() error { return d.root.Close() }

// Path is the absolute path of name, for messages and for the paths devmtls
// hands to other programs.
func (d *Dir) Path(name string) string {
	if name == "" || name == "." {
		return d.abs
	}
	return filepath.Join(d.abs, filepath.FromSlash(name))
}

// check refuses a link at any existing component of name (the last one
// included when last is true). Missing components end the check.
func (d *Dir) check(name string, last bool) error {
	if err := validName(name); err != nil {
		return err
	}
	parts := strings.Split(name, "/")
	if !last {
		parts = parts[:len(parts)-1]
	}
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fi, err := d.root.Lstat(prefix)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := checkEntry(d.Path(prefix), fi); err != nil {
			return err
		}
	}
	return nil
}

// validName refuses names that are not plain relative paths; they are
// devmtls's own constants, so this guards against programming mistakes.
func validName(name string) error {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, `\`) {
		return fmt.Errorf("envdir: %q is not a relative name inside the environment", name)
	}
	return nil
}

// Lstat describes name without following it.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := d.check(name, false); err != nil {
		return nil, err
	}
	return d.root.Lstat(name)
}

// ReadFile reads a file, refusing a link anywhere on its way.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	if err := d.check(name, true); err != nil {
		return nil, err
	}
	b, err := d.root.ReadFile(name)
	return b, d.explain(name, err)
}

// ReadDir lists a directory (links refused on the way).
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		if err := d.check(name, true); err != nil {
			return nil, err
		}
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, d.explain(name, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	return entries, d.explain(name, err)
}

// OpenFile opens a file, refusing a link anywhere on its way. The file must
// not be a link even when created: O_NOFOLLOW semantics hold throughout.
func (d *Dir) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := d.check(name, true); err != nil {
		return nil, err
	}
	f, err := d.openCreating(name, flag, perm)
	return f, d.explain(name, err)
}

// MkdirAll creates name and any missing parent with mode perm (set
// explicitly, whatever the umask) and gives the directories it creates to
// uid:gid when uid >= 0. Existing directories are left as they are; a link on
// the way is refused.
func (d *Dir) MkdirAll(name string, perm fs.FileMode, uid, gid int) error {
	if err := validName(name); err != nil {
		return err
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fi, err := d.root.Lstat(prefix)
		if err == nil {
			if err := checkEntry(d.Path(prefix), fi); err != nil {
				return err
			}
			if !fi.IsDir() {
				return &RefusedError{Path: d.Path(prefix), Problem: "is not a directory", Fix: "move it away and run devmtls again"}
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := d.root.Mkdir(prefix, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return d.explain(prefix, fmt.Errorf("create %s: %w", d.Path(prefix), err))
		}
		uid, gid := d.owner(uid, gid)
		if err := d.setMeta(prefix, perm, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// SetMode sets the mode of a file or directory (never a link's target) and,
// with uid >= 0, gives it to uid:gid, through a handle opened without
// following links.
func (d *Dir) SetMode(name string, perm fs.FileMode, uid, gid int) error {
	if err := d.check(name, true); err != nil {
		return err
	}
	return d.explain(name, d.setMeta(name, perm, uid, gid))
}

func (d *Dir) setMeta(name string, perm fs.FileMode, uid, gid int) error {
	f, err := d.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if modeBitsControlAccess {
		if err := f.Chmod(perm); err != nil {
			return fmt.Errorf("set the mode of %s: %w", d.Path(name), err)
		}
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("give %s to %d:%d: %w", d.Path(name), uid, gid, err)
		}
	}
	return nil
}

// WriteFile replaces name atomically with data (mode perm, whatever the umask):
// a temporary file in the same directory is written, synced and renamed over
// it, and the directory synced. A secret (perm without group or other bits)
// is private from its creation, on Windows through its ACL. With uid >= 0 the
// file is given to uid:gid before it appears under its name.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode, uid, gid int) error {
	if err := d.check(name, true); err != nil {
		return err
	}
	if fi, err := d.root.Lstat(name); err == nil && fi.IsDir() {
		return &RefusedError{Path: d.Path(name), Problem: "is a directory where devmtls writes a file", Fix: "move it away and run devmtls again"}
	}
	uid, gid = d.owner(uid, gid)
	tmp, err := d.stage(name, data, perm, uid, gid)
	if err != nil {
		return d.explain(name, err)
	}
	if err := d.root.Rename(tmp, name); err != nil {
		d.root.Remove(tmp)
		return d.explain(name, fmt.Errorf("replace %s: %w", d.Path(name), err))
	}
	return d.SyncDir(path.Dir(name))
}

// stage writes a new temporary file next to name and returns its name.
func (d *Dir) stage(name string, data []byte, perm fs.FileMode, uid, gid int) (string, error) {
	tmp := path.Join(path.Dir(name), "."+path.Base(name)+".tmp-"+randomSuffix())
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", d.Path(name), err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		d.root.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", d.Path(name), err)
	}
	// Mode, ACL and owner are set before the first byte is written, so a
	// secret is never readable by anyone else, even for a moment.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if perm&0o077 == 0 {
		if err := fileacl.Restrict(f); err != nil {
			return fail(err)
		}
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			f.Close()
			d.root.Remove(tmp)
			return "", fmt.Errorf("give %s to %d:%d: %w", d.Path(name), uid, gid, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		d.root.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", d.Path(name), err)
	}
	return tmp, nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Remove removes a file, an empty directory or a link (never its target).
func (d *Dir) Remove(name string) error {
	if err := d.check(name, false); err != nil {
		return err
	}
	return d.explain(name, d.root.Remove(name))
}

// RemoveAll removes a directory devmtls created and everything in it; links
// inside are removed, never followed. Callers pass only names devmtls
// recorded creating.
func (d *Dir) RemoveAll(name string) error {
	if err := d.check(name, false); err != nil {
		return err
	}
	return d.explain(name, d.root.RemoveAll(name))
}

// Readlink returns a link's target.
func (d *Dir) Readlink(name string) (string, error) {
	if err := d.check(name, false); err != nil {
		return "", err
	}
	return d.root.Readlink(name)
}

// Symlink creates the link name pointing to target. Only the generation
// links (see OwnLink) are ever created.
func (d *Dir) Symlink(target, name string) error {
	if err := d.check(name, false); err != nil {
		return err
	}
	if !OwnLink(path.Base(name), target) {
		return fmt.Errorf("envdir: refusing to create the link %s -> %s, which is not a generation link", d.Path(name), target)
	}
	if err := d.root.Symlink(target, name); err != nil {
		return d.explain(name, err)
	}
	if d.uid >= 0 {
		return d.root.Lchown(name, d.uid, d.gid)
	}
	return nil
}

// Lchown gives a link itself to uid:gid.
func (d *Dir) Lchown(name string, uid, gid int) error {
	if err := d.check(name, false); err != nil {
		return err
	}
	return d.root.Lchown(name, uid, gid)
}

// Rename renames within the directory; a link at newname is replaced, not
// followed.
func (d *Dir) Rename(oldname, newname string) error {
	if err := d.check(oldname, false); err != nil {
		return err
	}
	if err := d.check(newname, false); err != nil {
		return err
	}
	return d.explain(newname, d.explain(oldname, d.root.Rename(oldname, newname)))
}

// SyncDir makes creations and renames in directory name durable. Windows
// cannot sync a directory and is skipped.
func (d *Dir) SyncDir(name string) error {
	if !atomicfile.DirSyncSupported {
		return nil
	}
	if name == "" {
		name = "."
	}
	f, err := d.root.Open(name)
	if err != nil {
		return fmt.Errorf("sync %s: %w", d.Path(name), err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", d.Path(name), err)
	}
	return nil
}
