package certs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/devmtls/devmtls/internal/atomicfile"
	"github.com/gofrs/flock"
)

const (
	stateFile     = "state.json"
	lockFile      = ".lock"
	gitignoreFile = ".gitignore"
	// stagePrefix names the files of a generation that is committed (state.json
	// lists them) but not yet moved into place; see commit.
	stagePrefix  = ".next."
	stateVersion = 1
)

// DefaultLockTimeout bounds how long a devmtls process waits for another one
// working on the same environment.
const DefaultLockTimeout = 30 * time.Second

// Store is an environment directory holding one generation of credentials.
// All operations take an exclusive file lock, so any number of devmtls
// processes may use the same directory at once.
type Store struct {
	// Dir is the environment directory, e.g. ".devmtls".
	Dir string
	// Now returns the current time; nil means time.Now. Tests move it forward
	// to exercise renewal.
	Now func() time.Time
	// LockTimeout bounds the wait for the lock; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Action says what Ensure did.
type Action string

// The outcomes of Ensure and Rotate.
const (
	Created   Action = "created"
	Renewed   Action = "renewed"
	Unchanged Action = "unchanged"
)

// Result is what Ensure and Rotate return.
type Result struct {
	Credentials *Credentials
	Action      Action
	// Reason explains a renewal in a few words ("expires in 3d", "names changed").
	Reason string
}

// state is state.json: the spec the files were made for and the SHA-256 of
// every file devmtls wrote, so a file changed by someone else is detected and
// never silently overwritten.
type state struct {
	Version     int               `json:"version"`
	Mode        Mode              `json:"mode"`
	KeyType     KeyType           `json:"key_type"`
	Validity    string            `json:"validity"`
	CommonName  string            `json:"common_name"`
	ExtraNames  []string          `json:"extra_names,omitempty"`
	Services    []string          `json:"services,omitempty"`
	Names       []string          `json:"names"`
	NotBefore   time.Time         `json:"not_before"`
	NotAfter    time.Time         `json:"not_after"`
	Fingerprint string            `json:"fingerprint_sha256"`
	Files       map[string]string `json:"files"`
}

func (st *state) spec() (Spec, error) {
	v, err := time.ParseDuration(st.Validity)
	if err != nil {
		return Spec{}, fmt.Errorf("field validity: %w", err)
	}
	if _, err := ParseMode(string(st.Mode)); err != nil {
		return Spec{}, fmt.Errorf("field mode: %w", err)
	}
	if _, err := ParseKeyType(string(st.KeyType)); err != nil {
		return Spec{}, fmt.Errorf("field key_type: %w", err)
	}
	return Spec{Mode: st.Mode, KeyType: st.KeyType, Validity: v, CommonName: st.CommonName,
		ExtraNames: st.ExtraNames, Services: st.Services}, nil
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) path(rel string) string { return filepath.Join(s.Dir, filepath.FromSlash(rel)) }

// Ensure makes the environment hold valid credentials for req: it creates them
// when missing and renews them when expired, within a third of their lifetime
// of expiry, or when the requested mode, key type, common name or name set
// differs from what is on disk. Otherwise it changes nothing.
func (s *Store) Ensure(ctx context.Context, req Request) (*Result, error) {
	return s.update(ctx, req, false)
}

// Rotate replaces the credentials unconditionally. It is also the way out when
// a file is damaged or was changed by hand: it overwrites them.
func (s *Store) Rotate(ctx context.Context, req Request) (*Result, error) {
	return s.update(ctx, req, true)
}

// Load reads the current credentials without creating or renewing anything. It
// returns an error wrapping fs.ErrNotExist when the environment has none yet.
func (s *Store) Load(ctx context.Context) (*Credentials, error) {
	unlock, err := s.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := s.readState()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%s has no credentials yet; run `devmtls certs` to create them: %w", s.Dir, fs.ErrNotExist)
	}
	return s.verify(st)
}

func (s *Store) update(ctx context.Context, req Request, force bool) (*Result, error) {
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer unlock()

	st, err := s.readState()
	if err != nil && !force {
		return nil, err
	}
	var stored *Spec
	var current *Credentials
	if st != nil {
		sp, err := st.spec()
		if err != nil {
			if !force {
				return nil, damaged(s.path(stateFile), err)
			}
		} else {
			stored = &sp
		}
		if !force {
			if current, err = s.verify(st); err != nil {
				return nil, err
			}
		}
	} else if !force {
		if err := s.refuseForeign(); err != nil {
			return nil, err
		}
	}
	spec, err := req.resolve(stored)
	if err != nil {
		return nil, err
	}

	action, reason := Created, ""
	switch {
	case force && st != nil:
		action, reason = Renewed, "rotation requested"
	case force:
		// Rotating an environment that had no state (or a broken one).
		action = Created
	case current != nil:
		reason = s.renewReason(stored, spec, current)
		if reason == "" {
			return &Result{Credentials: current, Action: Unchanged}, nil
		}
		action = Renewed
	}
	var old map[string]string
	if st != nil {
		old = st.Files
	}
	creds, err := s.commit(spec, old)
	if err != nil {
		return nil, err
	}
	return &Result{Credentials: creds, Action: action, Reason: reason}, nil
}

// renewReason says why the on-disk credentials no longer fit, or "" if they do.
func (s *Store) renewReason(stored *Spec, want Spec, cur *Credentials) string {
	now := s.now()
	switch {
	case stored.Mode != want.Mode:
		return fmt.Sprintf("mode changed from %s to %s", stored.Mode, want.Mode)
	case stored.KeyType != want.KeyType:
		return fmt.Sprintf("key type changed from %s to %s", stored.KeyType, want.KeyType)
	case stored.CommonName != want.CommonName:
		return "common name changed"
	case !slices.Equal(stored.Names(), want.Names()):
		return "names changed: " + diffNames(stored.Names(), want.Names())
	case !slices.Equal(stored.Services, want.Services):
		return "services changed"
	case !now.Before(cur.NotAfter):
		return "expired " + cur.NotAfter.Format(time.RFC3339)
	case now.Before(cur.NotBefore):
		return "not valid yet (was the clock changed?)"
	}
	lifetime := cur.NotAfter.Sub(cur.NotBefore)
	if left := cur.NotAfter.Sub(now); left < lifetime/3 {
		return "expires in " + roundDuration(left)
	}
	return ""
}

func diffNames(old, new []string) string {
	var parts []string
	for _, n := range new {
		if !slices.Contains(old, n) {
			parts = append(parts, "+"+n)
		}
	}
	for _, n := range old {
		if !slices.Contains(new, n) {
			parts = append(parts, "-"+n)
		}
	}
	return strings.Join(parts, " ")
}

func roundDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}

// prepareDir creates the environment directory 0700 with a .gitignore that
// keeps everything in it out of version control.
func (s *Store) prepareDir() error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create environment directory %s: %w", s.Dir, err)
	}
	if err := os.Chmod(s.Dir, 0o700); err != nil {
		return fmt.Errorf("restrict environment directory %s to its owner: %w", s.Dir, err)
	}
	gi := s.path(gitignoreFile)
	if _, err := os.Lstat(gi); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.WriteFile(gi, []byte("# Written by devmtls: dev credentials must never be committed.\n*\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// lock takes the environment's file lock, waiting at most LockTimeout.
func (s *Store) lock(ctx context.Context, create bool) (func(), error) {
	path := s.path(lockFile)
	if !create {
		if _, err := os.Stat(s.Dir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s has no credentials yet; run `devmtls certs` to create them: %w", s.Dir, fs.ErrNotExist)
			}
			return nil, err
		}
	}
	timeout := s.LockTimeout
	if timeout == 0 {
		timeout = DefaultLockTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fl := flock.New(path, flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil || !ok {
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s is locked by another devmtls process for more than %s; wait for it to finish or stop it", path, timeout)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = fl.Unlock() }, nil
}

// readState returns nil, nil when the environment has no state.json yet.
func (s *Store) readState() (*state, error) {
	p := s.path(stateFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, damaged(p, err)
	}
	if st.Version != stateVersion {
		return nil, &FileError{Path: p, Problem: fmt.Sprintf("has version %d, which this devmtls does not understand", st.Version),
			Fix: "upgrade devmtls or " + strings.TrimPrefix(fixRotate, "run ")}
	}
	if len(st.Files) == 0 {
		return nil, damaged(p, errors.New("it lists no files"))
	}
	for rel := range st.Files {
		if !validRel(rel) {
			return nil, damaged(p, fmt.Errorf("file name %q is not one devmtls writes", rel))
		}
	}
	return &st, nil
}

// validRel accepts only the relative paths devmtls itself writes, so a doctored
// state.json cannot make it touch files outside the environment.
func validRel(rel string) bool {
	switch rel {
	case FileCert, FileKey, FileCA, FileKeyCert:
		return true
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || parts[0] != servicesDir || ValidateServiceName(parts[1]) != nil {
		return false
	}
	switch parts[2] {
	case FileCert, FileKey, FileKeyCert:
		return true
	}
	return false
}

// refuseForeign stops devmtls from overwriting credential files it did not
// write (no state.json records them).
func (s *Store) refuseForeign() error {
	for _, name := range []string{FileCert, FileKey, FileCA, FileKeyCert, servicesDir} {
		p := s.path(name)
		if _, err := os.Lstat(p); err == nil {
			return &FileError{Path: p, Problem: "was not written by devmtls (" + s.path(stateFile) + " is missing)",
				Fix: "move it away, or run `devmtls certs rotate` to overwrite it"}
		}
	}
	return nil
}

// verify checks every file against state.json (finishing an interrupted commit
// first) and loads the credentials.
func (s *Store) verify(st *state) (*Credentials, error) {
	contents := map[string][]byte{}
	for _, rel := range sortedKeys(st.Files) {
		want := st.Files[rel]
		p := s.path(rel)
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if err != nil || digest(data) != want {
			// A commit that crashed after writing state.json leaves the new file
			// staged beside the old one; finish it.
			staged, serr := os.ReadFile(stagedPath(p))
			if serr == nil && digest(staged) == want {
				if err := os.Rename(stagedPath(p), p); err != nil {
					return nil, fmt.Errorf("finish interrupted update of %s: %w", p, err)
				}
				data = staged
			} else if err != nil {
				return nil, &FileError{Path: p, Problem: "is missing", Fix: fixRotate, Err: err}
			} else {
				return nil, &FileError{Path: p, Problem: "was changed outside devmtls (it no longer matches " + s.path(stateFile) + ")", Fix: fixRotate}
			}
		}
		contents[rel] = data
	}
	s.removeStaged()
	return loadCredentials(s.Dir, st, contents)
}

// commit writes a new generation for spec. The files are staged first, then
// state.json is replaced (the commit point), then the staged files are renamed
// into place; a crash at any point leaves either the old generation intact or a
// committed one that verify completes.
func (s *Store) commit(spec Spec, oldFiles map[string]string) (*Credentials, error) {
	m, err := generate(spec, s.now())
	if err != nil {
		return nil, err
	}
	files := m.files()
	st := &state{
		Version: stateVersion, Mode: spec.Mode, KeyType: spec.KeyType, Validity: spec.Validity.String(),
		CommonName: spec.CommonName, ExtraNames: spec.ExtraNames, Services: spec.Services, Names: spec.Names(),
		NotBefore: m.top.cert.NotBefore, NotAfter: m.top.cert.NotAfter, Fingerprint: Fingerprint(m.top.cert),
		Files: map[string]string{},
	}
	s.removeStaged()
	for _, rel := range sortedKeys(files) {
		f := files[rel]
		st.Files[rel] = digest(f.data)
		p := s.path(rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		perm := os.FileMode(0o644)
		if f.secret {
			perm = 0o600
		}
		if err := atomicfile.WriteFile(stagedPath(p), f.data, perm); err != nil {
			return nil, err
		}
	}
	stateJSON, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.path(stateFile), append(stateJSON, '\n'), 0o600); err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for _, rel := range sortedKeys(files) {
		p := s.path(rel)
		if err := os.Rename(stagedPath(p), p); err != nil {
			return nil, fmt.Errorf("move new %s into place: %w", p, err)
		}
		dirs[filepath.Dir(p)] = true
	}
	// Files of the previous generation that this one does not have (a service
	// that left the project) are removed; they were ours, state.json said so.
	for rel := range oldFiles {
		if _, keep := files[rel]; !keep {
			os.Remove(s.path(rel))
			dirs[filepath.Dir(s.path(rel))] = true
		}
	}
	for d := range dirs {
		if d != filepath.Clean(s.Dir) {
			os.Remove(d) // only succeeds when empty
		}
		if err := atomicfile.SyncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	contents := map[string][]byte{}
	for rel, f := range files {
		contents[rel] = f.data
	}
	return loadCredentials(s.Dir, st, contents)
}

// removeStaged deletes staged files that no committed state refers to.
func (s *Store) removeStaged() {
	_ = filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), stagePrefix) {
			os.Remove(p)
		}
		return nil
	})
}

func stagedPath(p string) string {
	return filepath.Join(filepath.Dir(p), stagePrefix+filepath.Base(p))
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
