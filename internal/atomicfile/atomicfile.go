// Package atomicfile writes files so that a reader sees either the old content or
// the new one, never a torn mix, and a crash never leaves a half-written file
// under the final name.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/devmtls/devmtls/internal/fileacl"
)

// WriteFile writes data to path atomically with the given permissions: it writes a
// temporary file in the same directory, fsyncs it, renames it over path and fsyncs
// the directory so the rename itself survives a crash.
//
// The permissions are applied with an explicit chmod, so the process umask cannot
// widen or narrow them.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := Stage(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// Stage writes data to a new temporary file next to path (same directory, so a
// later rename is atomic), fsyncs it and returns its name. The caller renames it
// into place or removes it.
func Stage(path string, data []byte, perm os.FileMode) (string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp uses 0600; chmod before writing so secrets are never readable
	// by others, even for a moment, and public files get their final mode.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if perm&0o077 == 0 {
		// On Windows the mode is not enough: replace the inherited ACL.
		if err := fileacl.Restrict(f); err != nil {
			return fail(err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return name, nil
}

// SyncDir fsyncs a directory so that renames and creations inside it are durable.
// Platforms that cannot open a directory for syncing (Windows) are skipped.
func SyncDir(dir string) error {
	if !DirSyncSupported {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
