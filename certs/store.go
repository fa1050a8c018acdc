package certs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/devmtls/devmtls/internal/envdir"
	"github.com/devmtls/devmtls/internal/generation"
)

const (
	stateFile     = "state.json"
	lockFile      = ".lock"
	gitignoreFile = ".gitignore"
	// stateVersion 2: each generation in its own directory behind ..data
	// (see internal/generation).
	stateVersion = 2
	// flatStateVersion 1, written by devmtls before generations: the files
	// themselves at the visible names. It is still read, and moved to the
	// current layout (same keypair) by the next Ensure.
	flatStateVersion = 1
)

// DefaultLockTimeout bounds how long a devmtls process waits for another one
// working on the same environment.
const DefaultLockTimeout = 30 * time.Second

// Store is an environment directory holding one generation of credentials.
// All operations take an exclusive file lock, so any number of devmtls
// processes may use the same directory at once. The directory is untrusted
// input (it may come from a cloned repository): every access goes through
// internal/envdir, which refuses links and directories of other users.
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

// state is state.json: the spec the files were made for, the generation
// directory that holds them and the SHA-256 of every file devmtls wrote, so a
// file changed by someone else is detected and never silently overwritten.
type state struct {
	Version     int               `json:"version"`
	Generation  string            `json:"generation,omitempty"`
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

// Ensure makes the environment hold valid credentials for req: it creates them
// when missing and renews them when expired, within a third of their lifetime
// of expiry, or when the requested mode, key type, common name or name set
// differs from what is on disk. Otherwise it changes nothing, so it also works
// on a read-only file system when the credentials are valid.
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
	d, err := envdir.Open(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no credentials yet; run `devmtls certs` to create them: %w", s.Dir, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	l, err := s.lock(ctx, d)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	st, err := readState(d)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%s has no credentials yet; run `devmtls certs` to create them: %w", d.Path("."), fs.ErrNotExist)
	}
	contents, err := s.verify(d, st)
	if err != nil {
		return nil, err
	}
	return loadCredentials(d.Path("."), st, contents)
}

func (s *Store) update(ctx context.Context, req Request, force bool) (*Result, error) {
	d, err := envdir.Create(s.Dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := writeGitignore(d); err != nil {
		return nil, err
	}
	l, err := s.lock(ctx, d)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()

	st, err := readState(d)
	if err != nil && !force {
		return nil, err
	}
	var stored *Spec
	var current *Credentials
	var contents map[string][]byte
	if st != nil {
		sp, err := st.spec()
		if err != nil {
			if !force {
				return nil, damaged(d.Path(stateFile), err)
			}
		} else {
			stored = &sp
		}
		if !force {
			if contents, err = s.verify(d, st); err != nil {
				return nil, err
			}
			if current, err = loadCredentials(d.Path("."), st, contents); err != nil {
				return nil, err
			}
		}
	} else if !force {
		if err := refuseForeign(d); err != nil {
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
			if st.Version == flatStateVersion {
				// Same keypair, moved into a generation.
				next := *st
				files := map[string]fileContent{}
				for rel, data := range contents {
					files[rel] = fileContent{data: data, secret: secretFile(rel)}
				}
				if current, err = s.write(d, &next, files, st, force); err != nil {
					return nil, err
				}
			}
			return &Result{Credentials: current, Action: Unchanged}, nil
		}
		action = Renewed
	}
	creds, err := s.commit(d, spec, st, force)
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
	if now.After(cur.RenewAt()) {
		return "expires in " + roundDuration(cur.NotAfter.Sub(now))
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

const gitignoreContent = "# Written by devmtls: dev credentials must never be committed.\n*\n"

// writeGitignore writes a .gitignore of "*" that keeps everything in the
// environment out of version control, unless one is there.
func writeGitignore(d *envdir.Dir) error {
	if _, err := d.Lstat(gitignoreFile); errors.Is(err, fs.ErrNotExist) {
		return d.WriteFile(gitignoreFile, []byte(gitignoreContent), 0o644, -1, -1)
	}
	return nil
}

// lock takes the environment's file lock, waiting at most LockTimeout.
func (s *Store) lock(ctx context.Context, d *envdir.Dir) (*envdir.Lock, error) {
	timeout := s.LockTimeout
	if timeout == 0 {
		timeout = DefaultLockTimeout
	}
	return d.LockWait(ctx, lockFile, timeout)
}

// readState returns nil, nil when the environment has no state.json yet.
func readState(d *envdir.Dir) (*state, error) {
	data, err := d.ReadFile(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.Path(stateFile), err)
	}
	return parseState(d.Path(stateFile), data)
}

// parseState checks everything state.json says that decides which files
// devmtls reads or writes, so a doctored one cannot make it touch anything
// but its own files.
func parseState(p string, data []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, damaged(p, err)
	}
	switch st.Version {
	case stateVersion:
		if !envdir.IsGeneration(st.Generation) {
			return nil, damaged(p, fmt.Errorf("generation %q is not one devmtls writes", st.Generation))
		}
	case flatStateVersion:
		if st.Generation != "" {
			return nil, damaged(p, errors.New("a version 1 state names a generation"))
		}
	default:
		return nil, &FileError{Path: p, Problem: fmt.Sprintf("has version %d, which this devmtls does not understand", st.Version),
			Fix: "upgrade devmtls or " + strings.TrimPrefix(fixRotate, "run ")}
	}
	if len(st.Files) == 0 {
		return nil, damaged(p, errors.New("it lists no files"))
	}
	for rel, sum := range st.Files {
		if !validRel(rel) {
			return nil, damaged(p, fmt.Errorf("file name %q is not one devmtls writes", rel))
		}
		if _, err := hex.DecodeString(sum); err != nil || len(sum) != 2*sha256.Size {
			return nil, damaged(p, fmt.Errorf("the digest of %s is not a SHA-256", rel))
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

// secretFile says which files hold a private key.
func secretFile(rel string) bool {
	base := path.Base(rel)
	return base == FileKey || base == FileKeyCert
}

// visibleNames are the names devmtls shows in the environment directory.
var visibleNames = []string{FileCert, FileKey, FileCA, FileKeyCert, servicesDir}

// refuseForeign stops devmtls from overwriting credential files it did not
// write (no state.json records them).
func refuseForeign(d *envdir.Dir) error {
	for _, name := range append(slices.Clone(visibleNames), envdir.DataLink) {
		if _, err := d.Lstat(name); err == nil {
			return &FileError{Path: d.Path(name), Problem: "was not written by devmtls (" + d.Path(stateFile) + " is missing)",
				Fix: "move it away, or run `devmtls certs rotate` to overwrite it"}
		}
	}
	return nil
}

func (s *Store) writer(d *envdir.Dir) *generation.Writer {
	return &generation.Writer{Dir: d, Base: ".", UID: -1, GID: -1}
}

// verify checks every file against state.json and returns their contents. A
// commit interrupted after its commit point (state.json names a generation
// that ..data does not point to yet) is finished first; nothing is written
// when everything is in place, so valid credentials load from a read-only
// file system.
func (s *Store) verify(d *envdir.Dir, st *state) (map[string][]byte, error) {
	w := s.writer(d)
	contents := map[string][]byte{}
	for _, rel := range slices.Sorted(maps.Keys(st.Files)) {
		var data []byte
		var err error
		if st.Version == flatStateVersion {
			data, err = d.ReadFile(rel)
		} else {
			data, err = w.ReadFile(st.Generation, rel)
		}
		p := d.Path(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, &FileError{Path: p, Problem: "is missing", Fix: fixRotate, Err: err}
		case errors.Is(err, envdir.ErrRefused):
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", p, err)
		case digest(data) != st.Files[rel]:
			return nil, &FileError{Path: p, Problem: "was changed outside devmtls (it no longer matches " + d.Path(stateFile) + ")", Fix: fixRotate}
		}
		contents[rel] = data
	}
	if st.Version == stateVersion {
		visible := visibleOf(st.Files)
		if !w.Linked(st.Generation, visible) {
			if err := w.Switch(st.Generation, visible, nil); err != nil {
				return nil, fmt.Errorf("finish the interrupted update of %s: %w", d.Path("."), err)
			}
			if err := w.RemoveExcept(st.Generation); err != nil {
				return nil, err
			}
		}
	}
	return contents, nil
}

// visibleOf returns the visible names of a generation's files.
func visibleOf(files map[string]string) []string {
	var gf []generation.File
	for rel := range files {
		gf = append(gf, generation.File{Name: rel})
	}
	return generation.Visible(gf)
}

// commit writes a new generation for spec.
func (s *Store) commit(d *envdir.Dir, spec Spec, old *state, force bool) (*Credentials, error) {
	m, err := generate(spec, s.now())
	if err != nil {
		return nil, err
	}
	st := &state{
		Mode: spec.Mode, KeyType: spec.KeyType, Validity: spec.Validity.String(),
		CommonName: spec.CommonName, ExtraNames: spec.ExtraNames, Services: spec.Services, Names: spec.Names(),
		NotBefore: m.top.cert.NotBefore, NotAfter: m.top.cert.NotAfter, Fingerprint: Fingerprint(m.top.cert),
	}
	return s.write(d, st, m.files(), old, force)
}

// write puts files on disk as a new generation: the generation directory is
// written and synced, then state.json is replaced (the commit point), then
// ..data is switched to it and the previous generation removed. A crash before
// the commit point leaves the old generation current (the unfinished one is
// removed by the next commit); after it, verify finishes the switch.
func (s *Store) write(d *envdir.Dir, st *state, files map[string]fileContent, old *state, force bool) (*Credentials, error) {
	w := s.writer(d)
	st.Version, st.Files = stateVersion, map[string]string{}
	var gf []generation.File
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		f := files[rel]
		st.Files[rel] = digest(f.data)
		mode := fs.FileMode(0o644)
		if f.secret {
			mode = 0o600
		}
		gf = append(gf, generation.File{Name: rel, Data: f.data, Mode: mode})
	}
	gen, err := w.Prepare(gf)
	if err != nil {
		return nil, err
	}
	st.Generation = gen
	stateJSON, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := d.WriteFile(stateFile, append(stateJSON, '\n'), 0o600, -1, -1); err != nil {
		d.RemoveAll(gen)
		return nil, err
	}
	if err := w.Switch(gen, generation.Visible(gf), ownedBy(old, force)); err != nil {
		return nil, err
	}
	if err := w.RemoveExcept(gen); err != nil {
		return nil, err
	}
	contents := map[string][]byte{}
	for rel, f := range files {
		contents[rel] = f.data
	}
	return loadCredentials(d.Path("."), st, contents)
}

// ownedBy says which plain files and directories in the way of the visible
// links devmtls may replace: those a flat (version 1) state recorded, and on
// rotation, which overwrites, any plain file.
func ownedBy(old *state, force bool) func(name string, isDir bool) bool {
	return func(name string, isDir bool) bool {
		if old != nil && old.Version == flatStateVersion {
			for rel := range old.Files {
				if top, _, _ := strings.Cut(rel, "/"); top == name {
					return true
				}
			}
		}
		return force && !isDir && slices.Contains(visibleNames, name)
	}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
