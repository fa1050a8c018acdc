package envdir

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
)

// The only links devmtls creates, the way the kubelet's atomic writer lays out
// a Secret volume: in a directory holding generations of files,
//
//	..data      -> ..2026_01_02_15_04_05.123456789   (the current generation)
//	..data_tmp  -> ..<generation>                     (the next one, for an instant)
//	cert        -> ..data/cert                        (one per visible name)
//	..link_tmp.cert -> ..data/cert                    (renamed over a plain file
//	                                                   an older devmtls wrote)
//
// Anything else that is a link is refused.
const (
	// DataLink points to the current generation.
	DataLink = "..data"
	// DataTmpLink is the next DataLink, renamed over it to switch.
	DataTmpLink = "..data_tmp"
	// VisibleTmpPrefix names a visible link about to be renamed into place.
	VisibleTmpPrefix = "..link_tmp."
)

// GenerationLayout is the time layout of a generation directory's name after
// its ".." prefix.
const GenerationLayout = "2006_01_02_15_04_05.000000000"

// generationShape is a generation directory's name with every digit shown as
// '0': IsGeneration compares against it byte by byte instead of compiling a
// regexp at every devmtls start.
const generationShape = "..0000_00_00_00_00_00.000000000"

// IsGeneration reports whether name has the form of a generation directory's
// name.
func IsGeneration(name string) bool {
	if len(name) != len(generationShape) {
		return false
	}
	for i := range len(name) {
		if generationShape[i] == '0' {
			if name[i] < '0' || name[i] > '9' {
				return false
			}
		} else if name[i] != generationShape[i] {
			return false
		}
	}
	return true
}

// VisibleTarget is the target of the visible link for name.
func VisibleTarget(name string) string { return DataLink + "/" + name }

// OwnLink reports whether a link called name pointing to target has exactly
// the form of a link devmtls writes.
func OwnLink(name, target string) bool {
	target = filepath.ToSlash(target)
	switch {
	case name == DataLink || name == DataTmpLink:
		return IsGeneration(target)
	case strings.HasPrefix(name, VisibleTmpPrefix):
		visible := strings.TrimPrefix(name, VisibleTmpPrefix)
		return OwnLink(visible, target) && !strings.HasPrefix(visible, "..")
	case strings.HasPrefix(name, ".."), name == "", strings.Contains(name, "/"):
		return false
	}
	return target == VisibleTarget(name)
}

// ErrRefused is what every refusal of an unsafe environment wraps.
var ErrRefused = errors.New("unsafe environment directory")

// LinkError reports a symbolic link (or Windows reparse point) where devmtls
// expects a file or directory of its own.
type LinkError struct {
	Path   string
	Target string // "" when it could not be read
}

func (e *LinkError) Error() string {
	what := "a symbolic link"
	if e.Target != "" {
		what += " to " + e.Target
	}
	return fmt.Sprintf("%s is %s, which devmtls refuses to follow (it creates no links other than its own ..data generation links, and nothing it writes may lead outside the environment); remove it with `rm %s` and run devmtls again",
		e.Path, what, shellQuote(e.Path))
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *LinkError) Is(target error) bool { return target == ErrRefused }

// RefusedError reports any other reason the environment cannot be used.
type RefusedError struct {
	Path    string
	Problem string
	Fix     string
}

func (e *RefusedError) Error() string { return e.Path + " " + e.Problem + "; " + e.Fix }

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// checkEntry refuses a link or reparse point; every caller has already
// decided that name is not one of devmtls's own links.
func checkEntry(p string, fi fs.FileInfo) error {
	if fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
		return &LinkError{Path: p}
	}
	return nil
}

// checkTree walks the whole environment without following anything and
// refuses the first link that is not exactly one devmtls writes (see
// OwnLink), so a hostile link is reported whatever command meets it first.
func (d *Dir) checkTree() error {
	return fs.WalkDir(d.root.FS(), ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil {
			return d.explain(name, fmt.Errorf("read %s: %w", d.Path(name), unwrapPath(err)))
		}
		if e.Type()&(fs.ModeSymlink|fs.ModeIrregular) == 0 {
			return nil
		}
		target, rerr := d.root.Readlink(name)
		if rerr != nil || !OwnLink(path.Base(name), target) {
			return &LinkError{Path: d.Path(name), Target: target}
		}
		if path.Base(name) == DataLink || path.Base(name) == DataTmpLink {
			// The generation it names must be a real directory beside it.
			fi, err := d.root.Lstat(path.Join(path.Dir(name), target))
			if err == nil && !fi.IsDir() {
				return &LinkError{Path: d.Path(name), Target: target}
			}
		}
		return nil
	})
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// shellQuote quotes p for a POSIX shell when it needs it.
func shellQuote(p string) string {
	if p != "" && strings.IndexFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r))
	}) < 0 {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
