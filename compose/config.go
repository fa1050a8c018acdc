package compose

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/forwards"
)

// Extension is the compose-file key devmtls reads, at the top level (defaults
// for the environment) and in each service (that service's settings).
const Extension = "x-devmtls"

// Defaults for a service's settings. They are the source article's layout, so a
// service that reads /var/mtls/cert in the cluster reads the same path locally.
const (
	DefaultMountPath         = "/var/mtls"
	DefaultPostgresMountPath = "/var/postgres-mtls"
	DefaultPostgresSSLMode   = "verify-full"
)

// FileNames are the names of the credential files inside a service's mount path.
type FileNames struct {
	Cert    string `json:"cert"`
	Key     string `json:"key"`
	CA      string `json:"ca"`
	KeyCert string `json:"key_cert"`
}

// DefaultFileNames are the article's names: cert, key, ca and key+cert (HAProxy).
func DefaultFileNames() FileNames {
	return FileNames{Cert: certs.FileCert, Key: certs.FileKey, CA: certs.FileCA, KeyCert: certs.FileKeyCert}
}

// EnvNames are the variables that tell a service where its credential files
// are. An empty name means the variable is not set.
type EnvNames struct {
	Cert    string `json:"cert"`
	Key     string `json:"key"`
	CA      string `json:"ca"`
	KeyCert string `json:"key_cert"`
}

// DefaultEnvNames are the names every devmtls integration uses.
func DefaultEnvNames() EnvNames {
	return EnvNames{Cert: "MTLS_CERT", Key: "MTLS_KEY", CA: "MTLS_CA", KeyCert: "MTLS_KEY_CERT"}
}

// The file names and variables of the extra layouts (formats). They are the
// names the consumers expect, so they are fixed.
const (
	PostgresFileCA   = "cacert"
	PostgresFileCert = "cert"
	PostgresFileKey  = "key"
	PKCS12KeyStore   = "keystore.p12"
	PKCS12TrustStore = "truststore.p12"
	DERFileCert      = "cert.der"
	DERFileKey       = "key.der"
	DERFileCA        = "ca.der"

	EnvPGSSLCert        = "PGSSLCERT"
	EnvPGSSLKey         = "PGSSLKEY"
	EnvPGSSLRootCert    = "PGSSLROOTCERT"
	EnvPGSSLMode        = "PGSSLMODE"
	EnvKeyStore         = "MTLS_KEYSTORE"
	EnvTrustStore       = "MTLS_TRUSTSTORE"
	EnvKeyStorePassword = "MTLS_KEYSTORE_PASSWORD"
)

// Owner is the numeric user and group that own a service's copies of the
// credential files, so a container running as that user can read its key.
type Owner struct {
	UID int `json:"uid"`
	GID int `json:"gid"`
}

func (o Owner) String() string { return strconv.Itoa(o.UID) + ":" + strconv.Itoa(o.GID) }

// Settings are one service's resolved credential settings: the top-level
// x-devmtls defaults overridden by the service's own x-devmtls.
type Settings struct {
	// MountPath is the directory in the container holding the default files.
	MountPath string    `json:"mount_path"`
	Files     FileNames `json:"files"`
	Env       EnvNames  `json:"env"`
	// Formats are the layouts besides the default files (pem and haproxy are
	// always there): postgres, pkcs12, pkcs8-der. Sorted, unique.
	Formats []certs.Format `json:"formats,omitempty"`
	// PostgresMountPath and PostgresSSLMode apply with the postgres format.
	PostgresMountPath string `json:"postgres_mount_path,omitempty"`
	PostgresSSLMode   string `json:"postgres_sslmode,omitempty"`
	// PKCS12Password protects keystore.p12 (pkcs12 format).
	PKCS12Password string `json:"-"`
	// User owns the service's copies of the files; nil means x-devmtls does
	// not say (see Service.Owner for what is used then).
	User *Owner `json:"user,omitempty"`
}

// HasFormat reports whether the service asked for the extra layout f.
func (s Settings) HasFormat(f certs.Format) bool { return slices.Contains(s.Formats, f) }

// defaultSettings are the settings of a service nobody configured.
func defaultSettings() Settings {
	return Settings{
		MountPath: DefaultMountPath, Files: DefaultFileNames(), Env: DefaultEnvNames(),
		PostgresMountPath: DefaultPostgresMountPath, PostgresSSLMode: DefaultPostgresSSLMode,
		PKCS12Password: certs.DefaultPKCS12Password,
	}
}

// Config is the top-level x-devmtls block.
type Config struct {
	// Enabled says whether services without their own x-devmtls get
	// credentials (default true); with false, services opt in one by one.
	Enabled bool
	// The environment's credential spec; zero values keep what the environment
	// already has (see certs.Request).
	Mode       certs.Mode
	KeyType    certs.KeyType
	Validity   time.Duration
	CommonName string
	// Names are extra certificate names; nil when x-devmtls does not set them.
	Names []string
	// Forwards are the test-cluster services the Compose services reach by
	// name through devmtls forwards (hybrid environments).
	Forwards []forwards.Forward
	// defaults for every service, applied before the service's own settings.
	defaults settingsPatch
}

// serviceConfig is one service's x-devmtls.
type serviceConfig struct {
	set     bool // the service has an x-devmtls key
	enabled bool // false: `x-devmtls: false`
	patch   settingsPatch
}

// settingsPatch is a partial Settings: nil fields are not set at this level.
type settingsPatch struct {
	mountPath         *string
	files             map[string]string
	env               map[string]string
	formats           *[]certs.Format
	postgresMountPath *string
	postgresSSLMode   *string
	pkcs12Password    *string
	user              *Owner
}

func (p settingsPatch) apply(s Settings) Settings {
	if p.mountPath != nil {
		s.MountPath = *p.mountPath
	}
	for k, v := range p.files {
		*fileField(&s.Files, k) = v
	}
	for k, v := range p.env {
		*envField(&s.Env, k) = v
	}
	if p.formats != nil {
		s.Formats = slices.Clone(*p.formats)
	}
	if p.postgresMountPath != nil {
		s.PostgresMountPath = *p.postgresMountPath
	}
	if p.postgresSSLMode != nil {
		s.PostgresSSLMode = *p.postgresSSLMode
	}
	if p.pkcs12Password != nil {
		s.PKCS12Password = *p.pkcs12Password
	}
	if p.user != nil {
		u := *p.user
		s.User = &u
	}
	return s
}

// The keys of the files and env mappings.
var fileKeys = []string{"cert", "key", "ca", "key_cert"}

func fileField(f *FileNames, key string) *string {
	switch key {
	case "cert":
		return &f.Cert
	case "key":
		return &f.Key
	case "ca":
		return &f.CA
	}
	return &f.KeyCert
}

func envField(e *EnvNames, key string) *string {
	switch key {
	case "cert":
		return &e.Cert
	case "key":
		return &e.Key
	case "ca":
		return &e.CA
	}
	return &e.KeyCert
}

// FieldError is a problem with one x-devmtls field. Path is the field's place
// in the compose file, e.g. "services.api.x-devmtls.mount_path".
type FieldError struct {
	Path    string
	Problem string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Problem }

func fieldErr(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)}
}

// describe names a YAML value's type the way a compose user thinks of it.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing (null)"
	case bool:
		return fmt.Sprintf("a boolean (%v)", x)
	case string:
		return fmt.Sprintf("a string (%q)", x)
	case int, int64, uint64, float64, int32, uint32, uint, float32:
		return fmt.Sprintf("a number (%v)", x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// fieldDecoder decodes one key of an x-devmtls mapping.
type fieldDecoder func(path string, v any) error

// decodeMapping runs the decoder of each key, in sorted key order so the first
// error reported is stable, and rejects keys no decoder knows.
func decodeMapping(path string, v any, decoders map[string]fieldDecoder, hint func(key string) string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fieldErr(path, "must be a mapping, got %s", describe(v))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dec, ok := decoders[k]
		if !ok {
			msg := fmt.Sprintf("unknown key (known keys: %s)", strings.Join(sortedKeys(decoders), ", "))
			if h := hint(k); h != "" {
				msg = h
			}
			return fieldErr(path+"."+k, "%s", msg)
		}
		if err := dec(path+"."+k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func asString(path string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fieldErr(path, "must be a string, got %s", describe(v))
	}
	return s, nil
}

func asBool(path string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fieldErr(path, "must be true or false, got %s", describe(v))
	}
	return b, nil
}

func asStringList(path string, v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fieldErr(path, "must be a list of strings, got %s", describe(v))
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", path, i), "must be a string, got %s", describe(e))
		}
		out = append(out, s)
	}
	return out, nil
}

// systemDirs are directories a credentials mount must never hide: mounting
// over them would break the container.
var systemDirs = []string{"/", "/bin", "/boot", "/dev", "/etc", "/etc/ssl", "/etc/ssl/certs", "/etc/pki", "/home", "/lib", "/lib32", "/lib64",
	"/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin",
	"/usr/sbin", "/usr/share", "/var", "/var/lib", "/var/log", "/var/run", "/var/tmp"}

// runtimeDirs are file systems the container runtime mounts itself; a
// credentials mount anywhere below them is refused.
var runtimeDirs = []string{"/proc", "/sys", "/dev"}

func asMountPath(p string, v any) (string, error) {
	s, err := asString(p, v)
	if err != nil {
		return "", err
	}
	if !path.IsAbs(s) {
		return "", fieldErr(p, "must be an absolute path, got %q", s)
	}
	clean := path.Clean(s)
	for _, d := range runtimeDirs {
		if strings.HasPrefix(clean, d+"/") {
			return "", fieldErr(p, "%s is under %s, which the container runtime provides itself; use a directory of its own such as %s", clean, d, DefaultMountPath)
		}
	}
	if slices.Contains(systemDirs, clean) {
		return "", fieldErr(p, "%s would hide the container's own files (devmtls mounts a directory there); use a directory of its own such as %s", clean, path.Join(clean, "mtls"))
	}
	if strings.ContainsAny(clean, ":,\n\x00") {
		return "", fieldErr(p, "%q contains a character bind mounts cannot carry (':', ',', newline)", s)
	}
	return clean, nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func asFileName(p string, v any) (string, error) {
	s, err := asString(p, v)
	if err != nil {
		return "", err
	}
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
		return "", fieldErr(p, "must be a plain file name (no '/'), got %q", s)
	}
	return s, nil
}

func asEnvName(p string, v any) (string, error) {
	s, err := asString(p, v)
	if err != nil {
		return "", err
	}
	if s != "" && !envNameRE.MatchString(s) {
		return "", fieldErr(p, "must be an environment variable name such as MTLS_CERT (or \"\" to set none), got %q", s)
	}
	return s, nil
}

var ownerRE = regexp.MustCompile(`^([0-9]{1,10})(?::([0-9]{1,10}))?$`)

// parseOwner reads "uid", "uid:gid" or a bare number. Names cannot be used:
// they only mean something inside the image, and devmtls sets the owner on
// the host.
func parseOwner(p string, v any) (Owner, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	default:
		return Owner{}, fieldErr(p, "must be a numeric \"uid:gid\" string, got %s", describe(v))
	}
	m := ownerRE.FindStringSubmatch(s)
	if m == nil {
		return Owner{}, fieldErr(p, "must be a numeric \"uid:gid\" such as \"999:999\" (user names only exist inside the image), got %q", s)
	}
	uid, err1 := strconv.ParseUint(m[1], 10, 31)
	gid := uid
	var err2 error
	if m[2] != "" {
		gid, err2 = strconv.ParseUint(m[2], 10, 31)
	}
	if err1 != nil || err2 != nil {
		return Owner{}, fieldErr(p, "uid and gid must be below 2^31, got %q", s)
	}
	return Owner{UID: int(uid), GID: int(gid)}, nil
}

// The formats a service may ask for; pem and haproxy are the default files and
// accepted for clarity.
var serviceFormats = []certs.Format{certs.FormatPEM, certs.FormatHAProxy, certs.FormatPostgres, certs.FormatPKCS12, certs.FormatPKCS8DER}

func asFormats(p string, v any) ([]certs.Format, error) {
	names, err := asStringList(p, v)
	if err != nil {
		return nil, err
	}
	var out []certs.Format
	for i, n := range names {
		f := certs.Format(strings.ToLower(strings.TrimSpace(n)))
		if !slices.Contains(serviceFormats, f) {
			known := make([]string, len(serviceFormats))
			for j, k := range serviceFormats {
				known[j] = string(k)
			}
			return nil, fieldErr(fmt.Sprintf("%s[%d]", p, i), "unknown format %q: use one of %s", n, strings.Join(known, ", "))
		}
		if f == certs.FormatPEM || f == certs.FormatHAProxy {
			continue // always mounted
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

var postgresSSLModes = []string{"require", "verify-ca", "verify-full"}

// settingsDecoders decodes the keys a service's x-devmtls and the top-level
// defaults share into patch.
func settingsDecoders(patch *settingsPatch) map[string]fieldDecoder {
	return map[string]fieldDecoder{
		"mount_path": func(p string, v any) error {
			s, err := asMountPath(p, v)
			patch.mountPath = &s
			return err
		},
		"files": func(p string, v any) error {
			patch.files = map[string]string{}
			return decodeMapping(p, v, keyedStrings(fileKeys, patch.files, asFileName), noHint)
		},
		"env": func(p string, v any) error {
			patch.env = map[string]string{}
			return decodeMapping(p, v, keyedStrings(fileKeys, patch.env, asEnvName), noHint)
		},
		"formats": func(p string, v any) error {
			f, err := asFormats(p, v)
			patch.formats = &f
			return err
		},
		"postgres": func(p string, v any) error {
			return decodeMapping(p, v, map[string]fieldDecoder{
				"mount_path": func(p string, v any) error {
					s, err := asMountPath(p, v)
					patch.postgresMountPath = &s
					return err
				},
				"sslmode": func(p string, v any) error {
					s, err := asString(p, v)
					if err == nil && !slices.Contains(postgresSSLModes, s) {
						err = fieldErr(p, "must be one of %s (mTLS needs TLS), got %q", strings.Join(postgresSSLModes, ", "), s)
					}
					patch.postgresSSLMode = &s
					return err
				},
			}, noHint)
		},
		"pkcs12": func(p string, v any) error {
			return decodeMapping(p, v, map[string]fieldDecoder{
				"password": func(p string, v any) error {
					s, err := asString(p, v)
					if err == nil && s == "" {
						err = fieldErr(p, "must not be empty (Java keystores need a password; the default is %q)", certs.DefaultPKCS12Password)
					}
					patch.pkcs12Password = &s
					return err
				},
			}, noHint)
		},
		"user": func(p string, v any) error {
			o, err := parseOwner(p, v)
			patch.user = &o
			return err
		},
	}
}

func keyedStrings(keys []string, into map[string]string, conv func(string, any) (string, error)) map[string]fieldDecoder {
	out := map[string]fieldDecoder{}
	for _, k := range keys {
		out[k] = func(p string, v any) error {
			s, err := conv(p, v)
			into[k] = s
			return err
		}
	}
	return out
}

func noHint(string) string { return "" }

// topOnlyKeys may only appear in the top-level x-devmtls.
var topOnlyKeys = []string{"enabled", "mode", "key_type", "validity", "common_name", "names", "forwards"}

// parseConfig decodes the top-level x-devmtls value (nil when absent).
func parseConfig(v any) (Config, error) {
	cfg := Config{Enabled: true}
	if v == nil {
		return cfg, nil
	}
	const p = Extension
	decoders := settingsDecoders(&cfg.defaults)
	decoders["enabled"] = func(p string, v any) error {
		b, err := asBool(p, v)
		cfg.Enabled = b
		return err
	}
	decoders["mode"] = func(p string, v any) error {
		s, err := asString(p, v)
		if err != nil {
			return err
		}
		m, err := certs.ParseMode(s)
		if err != nil {
			return fieldErr(p, "%v", err)
		}
		cfg.Mode = m
		return nil
	}
	decoders["key_type"] = func(p string, v any) error {
		s, err := asString(p, v)
		if err != nil {
			return err
		}
		k, err := certs.ParseKeyType(s)
		if err != nil {
			return fieldErr(p, "%v", err)
		}
		cfg.KeyType = k
		return nil
	}
	decoders["validity"] = func(p string, v any) error {
		s, err := asString(p, v)
		if err != nil {
			return fieldErr(p, "must be a duration such as 30d or 720h, got %s", describe(v))
		}
		d, err := certs.ParseValidity(s)
		if err != nil {
			return fieldErr(p, "%v", err)
		}
		cfg.Validity = d
		return nil
	}
	decoders["common_name"] = func(p string, v any) error {
		s, err := asString(p, v)
		if err == nil && (s == "" || len(s) > 64) {
			err = fieldErr(p, "must be 1 to 64 characters, got %q", s)
		}
		cfg.CommonName = s
		return err
	}
	decoders["names"] = func(p string, v any) error {
		names, err := asStringList(p, v)
		if err != nil {
			return err
		}
		for i, n := range names {
			if _, err := certs.NormalizeName(n); err != nil {
				return fieldErr(fmt.Sprintf("%s[%d]", p, i), "%v", err)
			}
		}
		cfg.Names = names
		return nil
	}
	decoders["forwards"] = func(p string, v any) error {
		f, err := ParseForwards(p, v)
		cfg.Forwards = f
		return err
	}
	if err := decodeMapping(p, v, decoders, noHint); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseServiceConfig decodes a service's x-devmtls value: false opts out,
// true (or an empty value) opts in with the defaults, a mapping overrides them.
func parseServiceConfig(service string, v any) (serviceConfig, error) {
	p := "services." + service + "." + Extension
	switch x := v.(type) {
	case bool:
		return serviceConfig{set: true, enabled: x}, nil
	case nil:
		return serviceConfig{set: true, enabled: true}, nil
	case map[string]any:
		sc := serviceConfig{set: true, enabled: true}
		hint := func(key string) string {
			if slices.Contains(topOnlyKeys, key) {
				return fmt.Sprintf("only allowed in the top-level %s (it applies to the whole environment)", Extension)
			}
			return ""
		}
		if err := decodeMapping(p, x, settingsDecoders(&sc.patch), hint); err != nil {
			return serviceConfig{}, err
		}
		return sc, nil
	}
	return serviceConfig{}, fieldErr(p, "must be false (opt out), true or a mapping of settings, got %s", describe(v))
}

// resolveSettings applies the defaults and the service's own settings, then
// checks what only the combination can get wrong (clashing names or mounts).
func resolveSettings(service string, top Config, sc serviceConfig) (Settings, error) {
	s := sc.patch.apply(top.defaults.apply(defaultSettings()))
	p := "services." + service + "." + Extension
	// Files that share the mount directory must have distinct names.
	inDir := map[string]string{}
	add := func(name, what string) error {
		if prev, ok := inDir[name]; ok {
			return fieldErr(p, "%s and %s would both be %s", prev, what, path.Join(s.MountPath, name))
		}
		inDir[name] = what
		return nil
	}
	for _, k := range fileKeys {
		if err := add(*fileField(&s.Files, k), "files."+k); err != nil {
			return Settings{}, err
		}
	}
	if s.HasFormat(certs.FormatPKCS12) {
		for _, n := range []string{PKCS12KeyStore, PKCS12TrustStore} {
			if err := add(n, "the pkcs12 format's "+n); err != nil {
				return Settings{}, err
			}
		}
	}
	if s.HasFormat(certs.FormatPKCS8DER) {
		for _, n := range []string{DERFileCert, DERFileKey, DERFileCA} {
			if err := add(n, "the pkcs8-der format's "+n); err != nil {
				return Settings{}, err
			}
		}
	}
	if s.HasFormat(certs.FormatPostgres) {
		a, b := s.MountPath, s.PostgresMountPath
		if a == b || strings.HasPrefix(b, a+"/") || strings.HasPrefix(a, b+"/") {
			return Settings{}, fieldErr(p, "mount_path %s and postgres.mount_path %s must be separate directories (neither inside the other)", a, b)
		}
	}
	// Variables must not overwrite each other.
	seen := map[string]string{}
	for _, kv := range s.envVars() {
		if prev, ok := seen[kv.name]; ok {
			return Settings{}, fieldErr(p, "%s and %s would both set %s", prev, kv.what, kv.name)
		}
		seen[kv.name] = kv.what
	}
	return s, nil
}

type envVar struct{ name, what, value string }

// envVars lists the variables a container gets, with the setting each comes
// from and its value (the file's path in the container).
func (s Settings) envVars() []envVar {
	var out []envVar
	in := func(name string) string { return path.Join(s.MountPath, name) }
	for _, k := range fileKeys {
		if n := *envField(&s.Env, k); n != "" {
			out = append(out, envVar{n, "env." + k, in(*fileField(&s.Files, k))})
		}
	}
	if s.HasFormat(certs.FormatPostgres) {
		pg := func(f string) string { return path.Join(s.PostgresMountPath, f) }
		out = append(out,
			envVar{EnvPGSSLCert, "the postgres format", pg(PostgresFileCert)},
			envVar{EnvPGSSLKey, "the postgres format", pg(PostgresFileKey)},
			envVar{EnvPGSSLRootCert, "the postgres format", pg(PostgresFileCA)},
			envVar{EnvPGSSLMode, "the postgres format", s.PostgresSSLMode})
	}
	if s.HasFormat(certs.FormatPKCS12) {
		out = append(out,
			envVar{EnvKeyStore, "the pkcs12 format", in(PKCS12KeyStore)},
			envVar{EnvTrustStore, "the pkcs12 format", in(PKCS12TrustStore)},
			envVar{EnvKeyStorePassword, "the pkcs12 format", s.PKCS12Password})
	}
	return out
}

// Environment returns the variables the service's container gets: the paths
// of its credential files in the container (and PGSSLMODE / the keystore
// password where those formats are on).
func (s Settings) Environment() map[string]string {
	out := map[string]string{}
	for _, kv := range s.envVars() {
		out[kv.name] = kv.value
	}
	return out
}

// composeTopLevel are the top-level keys of the compose format that are not
// services.
var composeTopLevel = []string{"version", "name", "services", "networks", "volumes", "secrets", "configs", "include", "models"}

// LegacyFormatError says that a compose file is in the legacy version 1
// format (services at the top level, no services: key). docker-compose v1
// still runs such a file, but compose-go (and so devmtls and Compose v2) sees
// no service in it.
type LegacyFormatError struct {
	File string
}

func (e *LegacyFormatError) Error() string {
	return e.File + " is in the legacy version 1 compose format (services at the top level, no services: key), in which devmtls finds no service; " +
		"indent the services under a top-level services: key (the format docker compose and docker-compose 1.27+ read)"
}

// legacyFormat returns the first file whose top level holds services without
// a services: key, or "".
func legacyFormat(files []string, raw func(file string) map[string]any) string {
	for _, f := range files {
		top := raw(f)
		if _, modern := top["services"]; modern {
			continue
		}
		for k, v := range top {
			if slices.Contains(composeTopLevel, k) || strings.HasPrefix(k, "x-") {
				continue
			}
			if svc, ok := v.(map[string]any); ok {
				_, image := svc["image"]
				_, build := svc["build"]
				if image || build {
					return f
				}
			}
		}
	}
	return ""
}
