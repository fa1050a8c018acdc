package compose

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/envdir"
)

// recipe is what a service's copies are made of besides the credentials: the
// file names, the extra formats and who owns them. Plan.Write records it, so
// the copies can be remade for new credentials without the compose files.
type recipe struct {
	Files          certs.FileSet  `json:"files"`
	Formats        []certs.Format `json:"formats,omitempty"`
	PKCS12Password string         `json:"pkcs12_password"`
	// Owner owns the copies; nil leaves them to whoever writes them.
	Owner *Owner `json:"owner,omitempty"`
}

func recipeOf(sp ServicePlan) recipe {
	// The password is part of the copies' inputs even without the pkcs12
	// format, so it is kept whatever the formats.
	r := recipe{Files: sp.Service.Files, Formats: slices.Clone(sp.Service.Formats), PKCS12Password: sp.Service.PKCS12Password}
	if sp.HasOwner {
		o := sp.Owner
		r.Owner = &o
	}
	return r
}

// validate checks a recipe read from disk (the environment directory is
// untrusted input) the way the compose file's settings are checked.
func (r recipe) validate() error {
	for _, name := range r.Files.Values() {
		if _, err := asFileName("files", name); err != nil {
			return err
		}
	}
	for _, f := range r.Formats {
		if f != certs.FormatPostgres && f != certs.FormatPKCS12 && f != certs.FormatPKCS8DER {
			return fmt.Errorf("unknown format %q", f)
		}
	}
	if o := r.Owner; o != nil && (o.UID < 0 || o.GID < 0 || o.UID >= 1<<31 || o.GID >= 1<<31) {
		return fmt.Errorf("owner %s is not a uid:gid", o)
	}
	return nil
}

// service is the service as far as its copies are concerned. Mount paths
// only matter to the overlay, which RefreshCopies leaves alone.
func (r recipe) service(name string) Service {
	s := defaultSettings()
	s.Files, s.Formats, s.PKCS12Password, s.User = r.Files, slices.Clone(r.Formats), r.PKCS12Password, r.Owner
	return Service{Name: name, Active: true, Settings: s}
}

// RefreshCopies remakes every service's copies for creds, as the last
// devmtls up laid them out, and returns the services whose copies changed.
// It is what keeps the copies following the credentials when they change
// while the project runs — an automatic renewal by the forwards process, a
// rotation — so a running container sees the new files in its mounted
// directory. The overlay is not rewritten (its label changes with the next
// devmtls up, which then recreates the containers); services whose copies
// cannot be remade (a leaf missing in ca mode, an owner only root may set)
// are reported and the others still done. Without copies it does nothing.
func RefreshCopies(ctx context.Context, envDir string, creds *certs.Credentials) ([]string, error) {
	d, err := envdir.Open(envDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if _, err := d.Lstat(CopiesDir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	l, err := d.LockWait(ctx, CopiesDir+"/"+copiesLock, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	// Credentials superseded while this waited for the lock must not
	// overwrite copies of newer ones: whoever made those brings the copies
	// along (a forward's next look does too).
	if cur, err := (&certs.Store{Dir: envDir}).Load(ctx); err == nil && cur.Fingerprint != creds.Fingerprint {
		return nil, nil
	}
	rec, err := readRecord(d)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(envDir)
	if err != nil {
		return nil, err
	}
	var updated []string
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(rec.Recipes)) {
		sp, err := planService(rec.Recipes[name].service(name), creds, abs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		changed, err := sp.write(d, rec.Services[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		if changed {
			updated = append(updated, name)
		}
	}
	return updated, errors.Join(errs...)
}

// LiveCredentials makes the environment's dev credentials a live source
// (certs.Live; the caller runs its Run) for a process that serves them for
// long: a forward. It renews them once they are due, and whenever they
// change — its own renewal, a rotation or renewal by another devmtls — it
// brings the compose copies along (RefreshCopies), so containers find the new
// files in their mounted directories. logf receives what happened, prefixed.
func LiveCredentials(store *certs.Store, initial *certs.Credentials, logf func(string, ...any)) (*certs.Live, error) {
	say := func(format string, args ...any) { logf("dev credentials: "+format, args...) }
	return certs.NewLive(store, initial, certs.LiveOptions{Renew: true, Logf: say,
		OnChange: func(ctx context.Context, c *certs.Credentials) {
			updated, err := RefreshCopies(ctx, store.Dir, c)
			if len(updated) > 0 {
				say("brought the compose copies of %s up to date", strings.Join(updated, ", "))
			}
			if err != nil {
				say("could not bring every compose copy up to date (devmtls up will): %v", err)
			}
		}})
}
