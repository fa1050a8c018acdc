// Package hostenv computes the environment variables that point a process run
// on the host (from a shell, `devmtls exec` or an IDE) at its dev credentials,
// and renders them for shells, dotenv files and JSON.
package hostenv

import (
	"fmt"
	"strings"

	"github.com/devmtls/devmtls/certs"
)

// The variables libpq (psql, psycopg, node-postgres with libpq, pgx) reads. Their
// names are fixed by libpq, so they are not configurable.
const (
	PGSSLCertVar     = "PGSSLCERT"
	PGSSLKeyVar      = "PGSSLKEY"
	PGSSLRootCertVar = "PGSSLROOTCERT"
	PGSSLModeVar     = "PGSSLMODE"
	// PGSSLModeVerifyFull makes libpq verify the server's certificate chain and
	// its name, the only mode that keeps mTLS meaningful.
	PGSSLModeVerifyFull = "verify-full"
)

// RuntimeTrustVars are the variables language runtimes read to find trusted
// CA certificates, in the order they are emitted. Only NODE_EXTRA_CA_CERTS adds
// to the system roots; the others replace them for the process.
func RuntimeTrustVars() []string {
	return []string{"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
}

// DefaultNames are the variables that name the credential files: MTLS_CERT,
// MTLS_KEY, MTLS_CA and MTLS_KEY_CERT. Compose services get the same names
// (unless x-devmtls env says otherwise), so code that reads MTLS_CERT works in
// a container, on the host and from an IDE. An empty name in a set of
// variable names leaves that variable out.
func DefaultNames() certs.FileSet {
	return certs.FileSet{Cert: "MTLS_CERT", Key: "MTLS_KEY", CA: "MTLS_CA", KeyCert: "MTLS_KEY_CERT"}
}

// Var is one environment variable.
type Var struct {
	Name  string
	Value string
	// Path marks values that are file names, so IDE configurations can write
	// them relative to the project (${workspaceFolder}, $PROJECT_DIR$).
	Path bool
}

// Input is everything that decides the variable set.
type Input struct {
	// Files are the absolute paths of the identity's credential files
	// (certs.Identity.Paths).
	Files certs.FileSet
	// Names are the variable names for Files; DefaultNames() unless the
	// project configures others.
	Names certs.FileSet
	// Postgres adds libpq's PGSSLCERT, PGSSLKEY, PGSSLROOTCERT and
	// PGSSLMODE=verify-full.
	Postgres bool
	// RuntimeTrust adds NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, REQUESTS_CA_BUNDLE
	// and GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, all pointing at the CA.
	RuntimeTrust bool
	// Extra variables are appended as given, e.g. the addresses of forwards.
	Extra []Var
}

// isVarName reports whether name matches ^[A-Za-z_][A-Za-z0-9_]*$, checked by
// hand because a package-level regexp is compiled at every devmtls start.
func isVarName(name string) bool {
	for i := range len(name) {
		c := name[i]
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return name != ""
}

// ValidateName checks that name is a portable environment variable name: every
// shell, dotenv parser and IDE accepts it.
func ValidateName(name string) error {
	if !isVarName(name) {
		return fmt.Errorf("invalid environment variable name %q: use letters, digits and '_', not starting with a digit", name)
	}
	return nil
}

// Build returns the variables for in, in a stable order: the credential paths,
// the libpq variables, the runtime trust variables, then Extra. It rejects
// invalid names and a name set twice.
func Build(in Input) ([]Var, error) {
	var vars []Var
	addPath := func(name, value, what string) error {
		if name == "" {
			return nil
		}
		if value == "" {
			return fmt.Errorf("no %s file for variable %s", what, name)
		}
		vars = append(vars, Var{Name: name, Value: value, Path: true})
		return nil
	}
	for _, p := range []struct{ name, value, what string }{
		{in.Names.Cert, in.Files.Cert, "certificate"},
		{in.Names.Key, in.Files.Key, "key"},
		{in.Names.CA, in.Files.CA, "CA"},
		{in.Names.KeyCert, in.Files.KeyCert, "key+cert"},
	} {
		if err := addPath(p.name, p.value, p.what); err != nil {
			return nil, err
		}
	}
	if in.Postgres {
		for _, p := range []struct{ name, value, what string }{
			{PGSSLCertVar, in.Files.Cert, "certificate"},
			{PGSSLKeyVar, in.Files.Key, "key"},
			{PGSSLRootCertVar, in.Files.CA, "CA"},
		} {
			if err := addPath(p.name, p.value, p.what); err != nil {
				return nil, err
			}
		}
		vars = append(vars, Var{Name: PGSSLModeVar, Value: PGSSLModeVerifyFull})
	}
	if in.RuntimeTrust {
		for _, name := range RuntimeTrustVars() {
			if err := addPath(name, in.Files.CA, "CA"); err != nil {
				return nil, err
			}
		}
	}
	vars = append(vars, in.Extra...)
	seen := map[string]bool{}
	for _, v := range vars {
		if err := ValidateName(v.Name); err != nil {
			return nil, err
		}
		// Windows treats names case-insensitively; refuse what would collide there too.
		key := strings.ToUpper(v.Name)
		if seen[key] {
			return nil, fmt.Errorf("environment variable %s is set twice; give each credential file its own variable name", v.Name)
		}
		seen[key] = true
	}
	return vars, nil
}

// KnownNames lists every variable Build may emit for names, with or without
// Postgres and RuntimeTrust. IDE configurations use it to remove variables
// devmtls wrote earlier that the current set no longer has.
func KnownNames(names certs.FileSet) []string {
	var out []string
	for _, n := range names.Values() {
		if n != "" {
			out = append(out, n)
		}
	}
	out = append(out, PGSSLCertVar, PGSSLKeyVar, PGSSLRootCertVar, PGSSLModeVar)
	return append(out, RuntimeTrustVars()...)
}

// Merge returns environ (KEY=VALUE entries, as os.Environ returns) with vars
// set, replacing any existing entry of the same name.
func Merge(environ []string, vars []Var) []string {
	set := map[string]bool{}
	for _, v := range vars {
		set[v.Name] = true
	}
	out := make([]string, 0, len(environ)+len(vars))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !set[name] {
			out = append(out, kv)
		}
	}
	for _, v := range vars {
		out = append(out, v.Name+"="+v.Value)
	}
	return out
}
