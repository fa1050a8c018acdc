// Package generation replaces a set of files at once, the way the kubelet's
// atomic writer updates a Secret volume: each generation is written into a
// fresh directory named after the time (..2026_01_02_15_04_05.123456789), the
// link ..data is switched to it with one rename, and every visible name is a
// link through ..data (cert -> ..data/cert). A reader that resolves ..data
// once — opens it as a directory, or reads one file — sees one generation,
// never a mix; the old generation is removed only after the switch, so a
// reader still holding it gets ENOENT and retries rather than a mix.
//
// Two separate path lookups (open cert, then open key) can still fall on
// either side of one switch: no rename can make two lookups atomic. Readers
// that need a matching pair open ..data once, or read a combined file.
package generation

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/devmtls/devmtls/internal/envdir"
)

// File is one file of a generation.
type File struct {
	// Name is slash-separated and relative to the generation, e.g. "cert"
	// or "services/api/cert"; its first element is a visible name.
	Name string
	Data []byte
	Mode fs.FileMode
}

// Writer writes generations into one directory of an environment.
type Writer struct {
	Dir *envdir.Dir
	// Base is the directory, relative to Dir, that holds the generations and
	// the visible links ("." for Dir itself).
	Base string
	// UID and GID own everything written when UID >= 0; else the process's
	// user does.
	UID, GID int
}

func (w *Writer) name(rel string) string {
	switch {
	case w.Base == "" || w.Base == ".":
		return rel
	case rel == ".":
		return w.Base
	}
	return w.Base + "/" + rel
}

// Visible returns the visible names of files: their first path elements,
// sorted, without duplicates.
func Visible(files []File) []string {
	var names []string
	for _, f := range files {
		top, _, _ := strings.Cut(f.Name, "/")
		if !slices.Contains(names, top) {
			names = append(names, top)
		}
	}
	slices.Sort(names)
	return names
}

// Current returns the generation ..data points to, or "" when there is none.
func (w *Writer) Current() (string, error) {
	target, err := w.Dir.Readlink(w.name(envdir.DataLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		var le *envdir.LinkError
		if errors.As(err, &le) {
			return "", err
		}
		// Not a link at all: a file or directory in its place.
		if fi, lerr := w.Dir.Lstat(w.name(envdir.DataLink)); lerr == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return "", &envdir.RefusedError{Path: w.Dir.Path(w.name(envdir.DataLink)), Problem: "is not the link devmtls writes there",
				Fix: "remove it and run devmtls again"}
		}
		return "", err
	}
	if !envdir.OwnLink(envdir.DataLink, target) {
		return "", &envdir.LinkError{Path: w.Dir.Path(w.name(envdir.DataLink)), Target: target}
	}
	return target, nil
}

// Prepare writes files into a new generation directory and syncs it. The
// generation is not visible until Switch.
func (w *Writer) Prepare(files []File) (string, error) {
	gen, err := w.mkGeneration()
	if err != nil {
		return "", err
	}
	dirs := []string{gen}
	for _, f := range files {
		if err := validFile(f.Name); err != nil {
			w.Dir.RemoveAll(w.name(gen))
			return "", err
		}
		if parent := path.Dir(f.Name); parent != "." {
			if err := w.Dir.MkdirAll(w.name(gen+"/"+parent), 0o700, w.UID, w.GID); err != nil {
				w.Dir.RemoveAll(w.name(gen))
				return "", err
			}
			if !slices.Contains(dirs, gen+"/"+parent) {
				dirs = append(dirs, gen+"/"+parent)
			}
		}
		if err := w.Dir.WriteFile(w.name(gen+"/"+f.Name), f.Data, f.Mode, w.UID, w.GID); err != nil {
			w.Dir.RemoveAll(w.name(gen))
			return "", err
		}
	}
	for _, d := range dirs {
		if err := w.Dir.SyncDir(w.name(d)); err != nil {
			w.Dir.RemoveAll(w.name(gen))
			return "", err
		}
	}
	return gen, nil
}

func validFile(name string) error {
	if name == "" || path.Clean(name) != name || path.IsAbs(name) || strings.HasPrefix(name, "..") || strings.Contains(name, "/..") {
		return fmt.Errorf("generation: %q is not a file name devmtls writes", name)
	}
	return nil
}

// mkGeneration creates an empty generation directory named after the time.
func (w *Writer) mkGeneration() (string, error) {
	if w.Base != "" && w.Base != "." {
		if err := w.Dir.MkdirAll(w.Base, 0o700, w.UID, w.GID); err != nil {
			return "", err
		}
	}
	t := time.Now().UTC()
	for range 1000 {
		gen := ".." + t.Format(envdir.GenerationLayout)
		if _, err := w.Dir.Lstat(w.name(gen)); errors.Is(err, fs.ErrNotExist) {
			if err := w.Dir.MkdirAll(w.name(gen), 0o700, w.UID, w.GID); err != nil {
				return "", err
			}
			return gen, nil
		}
		t = t.Add(time.Nanosecond)
	}
	return "", fmt.Errorf("create a new generation in %s: too many exist", w.Dir.Path(w.name(".")))
}

// Switch makes gen the current generation and every name of visible a link
// through ..data, then removes the visible links whose names gen no longer
// has. Visible names already linked stay untouched (they follow ..data). A
// regular file or directory in the way of a visible link is replaced only
// when owned says devmtls wrote it (an older devmtls wrote plain files);
// anything else is refused.
func (w *Writer) Switch(gen string, visible []string, owned func(name string, isDir bool) bool) error {
	if !envdir.IsGeneration(gen) {
		return fmt.Errorf("generation: %q is not a generation", gen)
	}
	tmp := w.name(envdir.DataTmpLink)
	if err := w.Dir.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := w.Dir.Symlink(gen, tmp); err != nil {
		return fmt.Errorf("switch %s to the new generation: %w", w.Dir.Path(w.name(".")), err)
	}
	w.lchown(tmp)
	if err := replaceLink(w.Dir, tmp, w.name(envdir.DataLink)); err != nil {
		w.Dir.Remove(tmp)
		return fmt.Errorf("switch %s to the new generation: %w", w.Dir.Path(w.name(".")), err)
	}
	for _, name := range visible {
		if err := w.link(name, owned); err != nil {
			return err
		}
	}
	if err := w.Dir.SyncDir(w.name(".")); err != nil {
		return err
	}
	return w.prune(visible, owned)
}

// link makes name the visible link ..data/name.
func (w *Writer) link(name string, owned func(string, bool) bool) error {
	p := w.name(name)
	fi, err := w.Dir.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := w.Dir.Symlink(envdir.VisibleTarget(name), p); err != nil {
			return err
		}
		w.lchown(p)
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := w.Dir.Readlink(p)
		if err != nil {
			return err
		}
		if !envdir.OwnLink(name, target) {
			return &envdir.LinkError{Path: w.Dir.Path(p), Target: target}
		}
		return nil
	case owned == nil || !owned(name, fi.IsDir()):
		return &envdir.RefusedError{Path: w.Dir.Path(p), Problem: "was not written by devmtls", Fix: "move it away and run devmtls again"}
	case fi.IsDir():
		// A link cannot be renamed over a directory: for a moment the
		// name is missing.
		if err := w.Dir.RemoveAll(p); err != nil {
			return err
		}
		if err := w.Dir.Symlink(envdir.VisibleTarget(name), p); err != nil {
			return err
		}
		w.lchown(p)
		return nil
	}
	// A plain file written by an older devmtls: replaced in one rename.
	tmp := w.name(envdir.VisibleTmpPrefix + name)
	w.Dir.Remove(tmp)
	if err := w.Dir.Symlink(envdir.VisibleTarget(name), tmp); err != nil {
		return err
	}
	w.lchown(tmp)
	return w.Dir.Rename(tmp, p)
}

// prune removes what the current generation no longer has: visible links of
// devmtls's form, and owned plain files.
func (w *Writer) prune(visible []string, owned func(string, bool) bool) error {
	entries, err := w.Dir.ReadDir(w.name("."))
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if slices.Contains(visible, name) || strings.HasPrefix(name, "..") {
			continue
		}
		p := w.name(name)
		if e.Type()&fs.ModeSymlink != 0 {
			if target, err := w.Dir.Readlink(p); err == nil && envdir.OwnLink(name, target) {
				if err := w.Dir.Remove(p); err != nil {
					return err
				}
			}
			continue
		}
		if owned != nil && owned(name, e.IsDir()) {
			if err := w.Dir.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Writer) lchown(name string) {
	if w.UID >= 0 {
		// The owner of a link does not matter to readers; it is set for
		// tidiness and may fail where links cannot change owner.
		_ = w.Dir.Lchown(name, w.UID, w.GID)
	}
}

// Generations lists the generation directories present, oldest first.
func (w *Writer) Generations() ([]string, error) {
	entries, err := w.Dir.ReadDir(w.name("."))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gens []string
	for _, e := range entries {
		if envdir.IsGeneration(e.Name()) && e.IsDir() {
			gens = append(gens, e.Name())
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// RemoveExcept removes every generation directory but keep. Called after a
// switch, it removes the generation that was current before and any that a
// crash left unfinished.
func (w *Writer) RemoveExcept(keep string) error {
	gens, err := w.Generations()
	if err != nil {
		return err
	}
	for _, g := range gens {
		if g == keep {
			continue
		}
		if err := w.Dir.RemoveAll(w.name(g)); err != nil {
			return fmt.Errorf("remove an old generation: %w", err)
		}
	}
	return nil
}

// ReadFile reads a file of generation gen.
func (w *Writer) ReadFile(gen, name string) ([]byte, error) {
	if !envdir.IsGeneration(gen) {
		return nil, fmt.Errorf("generation: %q is not a generation", gen)
	}
	if err := validFile(name); err != nil {
		return nil, err
	}
	return w.Dir.ReadFile(w.name(gen + "/" + name))
}

// Lstat describes a file of generation gen.
func (w *Writer) Lstat(gen, name string) (fs.FileInfo, error) {
	return w.Dir.Lstat(w.name(gen + "/" + name))
}

// Linked reports whether ..data points to gen and every visible name is the
// link devmtls writes, i.e. whether Switch(gen, visible) has nothing to do
// (stale links aside).
func (w *Writer) Linked(gen string, visible []string) bool {
	if cur, err := w.Current(); err != nil || cur != gen {
		return false
	}
	for _, name := range visible {
		target, err := w.Dir.Readlink(w.name(name))
		if err != nil || !envdir.OwnLink(name, target) {
			return false
		}
	}
	return true
}
