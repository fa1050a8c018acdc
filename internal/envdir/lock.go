package envdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ErrLocked says that another process holds a lock.
var ErrLocked = errors.New("locked by another process")

// Lock is a held advisory lock on a file of the environment.
type Lock struct {
	f *os.File
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	_ = unlockFile(l.f)
	l.f.Close()
}

// File is the open lock file, e.g. to learn its identity.
func (l *Lock) File() *os.File { return l.f }

// openLockFile opens (creating it 0600 when it can) the lock file name. On a
// read-only file system an existing lock file is opened for reading, which is
// enough to lock it.
func (d *Dir) openLockFile(name string) (*os.File, error) {
	if err := d.check(name, true); err != nil {
		return nil, err
	}
	f, err := d.openCreating(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if rf, rerr := d.root.OpenFile(name, os.O_RDONLY, 0); rerr == nil {
			return rf, nil
		}
		return nil, d.explain(name, err)
	}
	return f, nil
}

// TryLock takes the exclusive lock on name if it is free. It returns an error
// wrapping ErrLocked when another process holds it.
func (d *Dir) TryLock(name string) (*Lock, error) {
	f, err := d.openLockFile(name)
	var oe *OwnerError
	if errors.As(err, &oe) {
		return nil, err // names the file and the fix already
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", d.Path(name), err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%s: %w", d.Path(name), ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", d.Path(name), err)
	}
	return &Lock{f: f}, nil
}

// LockWait takes the exclusive lock on name, waiting for another process to
// release it until ctx ends or timeout passes.
func (d *Dir) LockWait(ctx context.Context, name string, timeout time.Duration) (*Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		l, err := d.TryLock(name)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%s is locked by another devmtls process for more than %s; wait for it to finish or stop it: %w", d.Path(name), timeout, ErrLocked)
			}
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Held reports whether another process holds the lock on name; a missing
// lock file means nobody does.
func (d *Dir) Held(name string) (bool, error) {
	if _, err := d.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	l, err := d.TryLock(name)
	if errors.Is(err, ErrLocked) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	l.Unlock()
	return false, nil
}
