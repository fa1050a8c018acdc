package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/envdir"
	"github.com/devmtls/devmtls/internal/generation"
)

const (
	// inputsFile records, per service, the digest of what its copies were
	// made from (see planService).
	inputsFile = ".inputs"
	// recordFile, in CopiesDir, lists the copy directories devmtls created:
	// the only ones it ever removes.
	recordFile = "state.json"
	copiesLock = ".lock"
	// The copy directories of a service, mounted whole.
	mainCopy     = "mtls"
	postgresCopy = "postgres"
	// recordVersion is the version of recordFile's format.
	recordVersion = 1
)

// record is CopiesDir/state.json.
type record struct {
	Version int `json:"version"`
	// Services maps each service devmtls wrote copies for to the copy
	// directories it created for it.
	Services map[string][]string `json:"services"`
	// Recipes say how each service's copies are made from the credentials,
	// so they can be remade when the credentials change while no devmtls up
	// runs (see RefreshCopies). Records written before recipes existed have
	// none; the next devmtls up adds them.
	Recipes map[string]recipe `json:"recipes,omitempty"`
}

// WriteResult says what Write changed on disk.
type WriteResult struct {
	// Services whose copies were (re)written.
	Updated []string
	// OverlayChanged is true when the overlay file was (re)written.
	OverlayChanged bool
}

// Write puts every service's copies and the overlay on disk, touching only
// what changed: a second run with the same inputs writes nothing, so the
// overlay's modification time and every file's inode stay put. Each mounted
// directory holds generations behind ..data (see internal/generation): the
// switch to new credentials happens inside the directory the container has
// mounted, so a running container sees them without being recreated, and a
// reader that resolves ..data once never sees a torn pair.
func (p *Plan) Write(ctx context.Context) (*WriteResult, error) {
	d, err := envdir.Create(p.EnvDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := d.MkdirAll(CopiesDir, 0o700, -1, -1); err != nil {
		return nil, err
	}
	l, err := d.LockWait(ctx, CopiesDir+"/"+copiesLock, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()

	old, err := readRecord(d)
	if err != nil {
		return nil, err
	}
	next := &record{Version: recordVersion, Services: map[string][]string{}, Recipes: map[string]recipe{}}
	for _, sp := range p.Services {
		next.Services[sp.Service.Name] = sp.copyNames()
		next.Recipes[sp.Service.Name] = recipeOf(sp)
	}
	// Everything about to be created is recorded before it exists, so a
	// crash never leaves a directory devmtls would not recognise as its own.
	union := &record{Version: recordVersion, Services: maps.Clone(old.Services), Recipes: old.Recipes}
	for name, dirs := range next.Services {
		union.Services[name] = unionNames(union.Services[name], dirs)
	}
	if err := writeRecord(d, union); err != nil {
		return nil, err
	}

	res := &WriteResult{}
	for _, sp := range p.Services {
		changed, err := sp.write(d, old.Services[sp.Service.Name])
		if err != nil {
			return nil, err
		}
		if changed {
			res.Updated = append(res.Updated, sp.Service.Name)
		}
	}
	// Copies of services that left the project (or opted out) are removed,
	// as the credentials store removes their leaves — only those recorded.
	for _, name := range slices.Sorted(maps.Keys(old.Services)) {
		if _, keep := next.Services[name]; keep || certs.ValidateServiceName(name) != nil {
			continue
		}
		if err := d.RemoveAll(CopiesDir + "/" + name); err != nil {
			return nil, fmt.Errorf("remove the copies of a service that left the project: %w", err)
		}
	}
	if err := writeRecord(d, next); err != nil {
		return nil, err
	}
	res.OverlayChanged, err = p.writeOverlay(d)
	return res, err
}

func unionNames(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// copyNames are the copy directories the service gets.
func (sp *ServicePlan) copyNames() []string {
	var names []string
	for _, dir := range sp.dirs {
		names = append(names, dir.name())
	}
	return names
}

// name is the copy directory's name inside the service's directory.
func (m mountDir) name() string { return path.Base(m.rel) }

// readRecord reads CopiesDir/state.json. Without one, service directories
// holding an .inputs file are the copies an older devmtls (which kept no
// record) wrote, and are taken as recorded.
func readRecord(d *envdir.Dir) (*record, error) {
	data, err := d.ReadFile(CopiesDir + "/" + recordFile)
	if errors.Is(err, fs.ErrNotExist) {
		return legacyRecord(d)
	}
	if err != nil {
		return nil, err
	}
	return parseRecord(d.Path(CopiesDir+"/"+recordFile), data)
}

// parseRecord accepts only service names and copy directory names devmtls
// writes, so a doctored record cannot name anything else for removal.
func parseRecord(p string, data []byte) (*record, error) {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, recordError(p, err.Error())
	}
	if rec.Version != recordVersion {
		return nil, recordError(p, fmt.Sprintf("it has version %d", rec.Version))
	}
	if rec.Services == nil {
		rec.Services = map[string][]string{}
	}
	for name, dirs := range rec.Services {
		if err := certs.ValidateServiceName(name); err != nil {
			return nil, recordError(p, fmt.Sprintf("service %q: %v", name, err))
		}
		for _, dir := range dirs {
			if dir != mainCopy && dir != postgresCopy {
				return nil, recordError(p, fmt.Sprintf("service %s: %q is not a directory devmtls writes", name, dir))
			}
		}
	}
	for name, r := range rec.Recipes {
		if _, ok := rec.Services[name]; !ok {
			return nil, recordError(p, fmt.Sprintf("recipe for %q, a service without copies", name))
		}
		if err := r.validate(); err != nil {
			return nil, recordError(p, fmt.Sprintf("service %s: %v", name, err))
		}
	}
	return &rec, nil
}

func recordError(p, problem string) error {
	return &envdir.RefusedError{Path: p, Problem: "is damaged (" + problem + ")",
		Fix: "remove it and the copies beside it (rm -r " + p[:len(p)-len(recordFile)] + ") and run devmtls up again"}
}

func legacyRecord(d *envdir.Dir) (*record, error) {
	rec := &record{Version: recordVersion, Services: map[string][]string{}}
	entries, err := d.ReadDir(CopiesDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || certs.ValidateServiceName(e.Name()) != nil {
			continue
		}
		if fi, err := d.Lstat(CopiesDir + "/" + e.Name() + "/" + inputsFile); err == nil && fi.Mode().IsRegular() {
			rec.Services[e.Name()] = []string{mainCopy, postgresCopy}
		}
	}
	return rec, nil
}

func writeRecord(d *envdir.Dir, rec *record) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	p := CopiesDir + "/" + recordFile
	if old, err := d.ReadFile(p); err == nil && bytes.Equal(old, append(data, '\n')) {
		return nil
	}
	return d.WriteFile(p, append(data, '\n'), 0o600, -1, -1)
}

// WriteOverlay writes only the overlay file, when its content changed.
func (p *Plan) WriteOverlay() (bool, error) {
	d, err := envdir.Create(p.EnvDir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	return p.writeOverlay(d)
}

func (p *Plan) writeOverlay(d *envdir.Dir) (bool, error) {
	if old, err := d.ReadFile(OverlayFile); err == nil && bytes.Equal(old, p.Overlay) {
		return false, nil
	}
	return true, d.WriteFile(OverlayFile, p.Overlay, 0o644, -1, -1)
}

// owner is who owns the service's copies: its configured user, else whoever
// runs devmtls (-1 where files have no numeric owner).
func (sp *ServicePlan) owner() (uid, gid int) {
	if sp.HasOwner {
		return sp.Owner.UID, sp.Owner.GID
	}
	// os.Getuid and os.Getgid return -1 where files have no numeric owner
	// (Windows).
	return os.Getuid(), os.Getgid()
}

// write brings one service's copies up to date; it reports whether it wrote.
// recorded are the copy directories of the service devmtls created before.
func (sp *ServicePlan) write(d *envdir.Dir, recorded []string) (bool, error) {
	base := CopiesDir + "/" + sp.Service.Name
	if sp.upToDate(d, base) {
		return false, nil
	}
	uid, gid := sp.owner()
	if err := d.MkdirAll(base, 0o700, -1, -1); err != nil {
		return false, err
	}
	for _, m := range sp.dirs {
		if err := sp.writeDir(d, m, uid, gid, slices.Contains(recorded, m.name())); err != nil {
			return false, err
		}
	}
	for _, name := range []string{mainCopy, postgresCopy} {
		if !slices.Contains(sp.copyNames(), name) && slices.Contains(recorded, name) {
			if err := d.RemoveAll(base + "/" + name); err != nil {
				return false, err
			}
		}
	}
	if err := d.WriteFile(base+"/"+inputsFile, []byte(sp.inputs+"\n"), 0o600, -1, -1); err != nil {
		return false, err
	}
	return true, nil
}

// writeDir writes one mounted directory's new generation and switches to it.
// recorded says devmtls created the directory, so plain files in it are its
// own (an older devmtls wrote them) and may be replaced.
func (sp *ServicePlan) writeDir(d *envdir.Dir, m mountDir, uid, gid int, recorded bool) error {
	if err := d.MkdirAll(m.rel, 0o700, uid, gid); err != nil {
		return sp.ownerError(err, uid, gid)
	}
	if err := d.SetMode(m.rel, 0o700, uid, gid); err != nil {
		return sp.ownerError(err, uid, gid)
	}
	w := &generation.Writer{Dir: d, Base: m.rel, UID: uid, GID: gid}
	var files []generation.File
	for _, f := range m.files {
		files = append(files, generation.File{Name: f.name, Data: f.data, Mode: fileMode(f)})
	}
	gen, err := w.Prepare(files)
	if err != nil {
		return sp.ownerError(err, uid, gid)
	}
	owned := func(string, bool) bool { return recorded }
	if err := w.Switch(gen, generation.Visible(files), owned); err != nil {
		return err
	}
	return w.RemoveExcept(gen)
}

// ownerError turns a refused chown into the error that says how to fix it:
// only root may give a file away, and devmtls never loosens a key's
// permissions instead.
func (sp *ServicePlan) ownerError(err error, uid, gid int) error {
	if errors.Is(err, fs.ErrPermission) && sp.HasOwner {
		return &OwnerError{Service: sp.Service.Name, Owner: Owner{UID: uid, GID: gid}, ProcessUID: os.Getuid()}
	}
	return err
}

// upToDate reports whether the copies were made from the same inputs and are
// all still there, linked, with the right owner and mode.
func (sp *ServicePlan) upToDate(d *envdir.Dir, base string) bool {
	old, err := d.ReadFile(base + "/" + inputsFile)
	if err != nil || string(bytes.TrimSpace(old)) != sp.inputs {
		return false
	}
	uid, gid := sp.owner()
	for _, m := range sp.dirs {
		w := &generation.Writer{Dir: d, Base: m.rel}
		gen, err := w.Current()
		if err != nil || gen == "" {
			return false
		}
		var files []generation.File
		for _, f := range m.files {
			files = append(files, generation.File{Name: f.name})
			fi, err := w.Lstat(gen, f.name)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != fileMode(f) {
				return false
			}
			if fuid, fgid, ok := fileOwner(fi); ok && uid >= 0 && (fuid != uid || fgid != gid) {
				return false
			}
		}
		if !w.Linked(gen, generation.Visible(files)) {
			return false
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
