package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/devmtls/devmtls/internal/atomicfile"
	"github.com/gofrs/flock"
)

// inputsFile records, per service, the digest of what its copies were made
// from (see planService).
const inputsFile = ".inputs"

// WriteResult says what Write changed on disk.
type WriteResult struct {
	// Services whose copies were (re)written.
	Updated []string
	// OverlayChanged is true when the overlay file was (re)written.
	OverlayChanged bool
}

// Write puts every service's copies and the overlay on disk, touching only
// what changed: a second run with the same inputs writes nothing, so the
// overlay's modification time and every file's inode stay put. Each file is
// written atomically (temp file, owner and mode set, rename) into a directory
// that is bind-mounted whole, so a running container sees the new files
// without being recreated.
func (p *Plan) Write(ctx context.Context) (*WriteResult, error) {
	copies := filepath.Join(p.EnvDir, CopiesDir)
	if err := mkdirPrivate(p.EnvDir); err != nil {
		return nil, err
	}
	if err := mkdirPrivate(copies); err != nil {
		return nil, err
	}
	unlock, err := lockDir(ctx, filepath.Join(copies, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	res := &WriteResult{}
	keep := map[string]bool{".lock": true}
	for _, sp := range p.Services {
		keep[sp.Service.Name] = true
		changed, err := sp.write(filepath.Join(copies, sp.Service.Name))
		if err != nil {
			return nil, err
		}
		if changed {
			res.Updated = append(res.Updated, sp.Service.Name)
		}
	}
	// Copies of services that left the project (or opted out) are removed, as
	// the credentials store removes their leaves.
	entries, err := os.ReadDir(copies)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", copies, err)
	}
	for _, e := range entries {
		if !keep[e.Name()] && e.IsDir() {
			if err := os.RemoveAll(filepath.Join(copies, e.Name())); err != nil {
				return nil, fmt.Errorf("remove the copies of a service that left the project: %w", err)
			}
		}
	}
	res.OverlayChanged, err = p.WriteOverlay()
	return res, err
}

// WriteOverlay writes only the overlay file, when its content changed.
func (p *Plan) WriteOverlay() (bool, error) {
	if err := mkdirPrivate(p.EnvDir); err != nil {
		return false, err
	}
	path := p.OverlayPath()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, p.Overlay) {
		return false, nil
	}
	return true, atomicfile.WriteFile(path, p.Overlay, 0o644)
}

// write brings one service's copies up to date; it reports whether it wrote.
func (sp *ServicePlan) write(base string) (bool, error) {
	if sp.upToDate(base) {
		return false, nil
	}
	if err := mkdirPrivate(base); err != nil {
		return false, err
	}
	uid, gid := os.Getuid(), os.Getgid()
	if sp.HasOwner {
		uid, gid = sp.Owner.UID, sp.Owner.GID
	}
	for _, d := range sp.dirs {
		if err := os.MkdirAll(d.Source, 0o700); err != nil {
			return false, fmt.Errorf("create %s: %w", d.Source, err)
		}
		if err := os.Chmod(d.Source, 0o700); err != nil {
			return false, fmt.Errorf("restrict %s to its owner: %w", d.Source, err)
		}
		if err := sp.chown(d.Source, uid, gid); err != nil {
			return false, err
		}
		want := map[string]bool{}
		for _, f := range d.files {
			want[f.name] = true
			if err := sp.writeFile(filepath.Join(d.Source, f.name), f, uid, gid); err != nil {
				return false, err
			}
		}
		// The directory is devmtls's alone: files it no longer needs (a
		// renamed file, a format turned off) go.
		entries, err := os.ReadDir(d.Source)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", d.Source, err)
		}
		for _, e := range entries {
			if !want[e.Name()] {
				if err := os.RemoveAll(filepath.Join(d.Source, e.Name())); err != nil {
					return false, err
				}
			}
		}
	}
	for _, name := range []string{"mtls", "postgres"} {
		dir := filepath.Join(base, name)
		if !sp.mounts(dir) {
			if err := os.RemoveAll(dir); err != nil {
				return false, err
			}
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(base, inputsFile), []byte(sp.inputs+"\n"), 0o600); err != nil {
		return false, err
	}
	return true, nil
}

func (sp *ServicePlan) mounts(dir string) bool {
	for _, d := range sp.dirs {
		if d.Source == dir {
			return true
		}
	}
	return false
}

// upToDate reports whether the copies were made from the same inputs and are
// all still there with the right owner and mode.
func (sp *ServicePlan) upToDate(base string) bool {
	old, err := os.ReadFile(filepath.Join(base, inputsFile))
	if err != nil || string(bytes.TrimSpace(old)) != sp.inputs {
		return false
	}
	uid, gid := os.Getuid(), os.Getgid()
	if sp.HasOwner {
		uid, gid = sp.Owner.UID, sp.Owner.GID
	}
	for _, d := range sp.dirs {
		for _, f := range d.files {
			fi, err := os.Lstat(filepath.Join(d.Source, f.name))
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != fileMode(f) {
				return false
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != uid || int(st.Gid) != gid) {
				return false
			}
		}
	}
	return true
}

func fileMode(f copyFile) os.FileMode {
	if f.secret {
		return 0o600
	}
	return 0o644
}

// writeFile stages the file, gives it its owner and mode, then renames it into
// place, so the container never sees a key with the wrong owner or a torn file.
func (sp *ServicePlan) writeFile(path string, f copyFile, uid, gid int) error {
	tmp, err := atomicfile.Stage(path, f.data, fileMode(f))
	if err != nil {
		return err
	}
	if err := sp.chown(tmp, uid, gid); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// chown gives path to uid:gid. Only root may give a file away; when devmtls
// runs as another user and the service needs another owner, it stops with an
// error saying how to fix it rather than loosening the key's permissions.
func (sp *ServicePlan) chown(path string, uid, gid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	err = os.Lchown(path, uid, gid)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return &OwnerError{Service: sp.Service.Name, Owner: Owner{UID: uid, GID: gid}, ProcessUID: os.Getuid()}
	}
	return fmt.Errorf("give %s to %d:%d: %w", path, uid, gid, err)
}

// OwnerError says that a service's key must belong to a user devmtls cannot
// give files to.
type OwnerError struct {
	Service    string
	Owner      Owner
	ProcessUID int
}

func (e *OwnerError) Error() string {
	return fmt.Sprintf("service %s needs its key owned by %s (its %s user or compose user:), but devmtls runs as uid %d and only root can give files away; "+
		"run devmtls with sudo, or run the service as your own uid (user: \"%d:%d\")",
		e.Service, e.Owner, Extension, e.ProcessUID, os.Getuid(), os.Getgid())
}

func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// lockDir serialises devmtls processes writing the same copies.
func lockDir(ctx context.Context, path string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fl := flock.New(path, flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil || !ok {
		return nil, fmt.Errorf("%s is locked by another devmtls process; wait for it to finish: %v", path, err)
	}
	return func() { _ = fl.Unlock() }, nil
}
