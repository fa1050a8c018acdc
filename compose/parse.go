package compose

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/hostenv"
	"github.com/devmtls/devmtls/internal/digits"
)

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
	if s != "" && hostenv.ValidateName(s) != nil {
		return "", fieldErr(p, "must be an environment variable name such as MTLS_CERT (or \"\" to set none), got %q", s)
	}
	return s, nil
}

// scalarString is a YAML string, or a YAML integer as the digits it was
// written with: a user writes user: 999 or ports: [443] meaning the string.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	}
	return "", false
}

// splitOwner splits "uid" or "uid:gid" (1 to 10 digits each) — what
// ^([0-9]{1,10})(?::([0-9]{1,10}))?$ accepts, checked by hand because a
// package-level regexp is compiled at every devmtls start. gid is "" without
// a colon.
func splitOwner(s string) (uid, gid string, ok bool) {
	uid, gid, colon := strings.Cut(s, ":")
	if len(uid) > 10 || !digits.Only(uid) || colon && (len(gid) > 10 || !digits.Only(gid)) {
		return "", "", false
	}
	return uid, gid, true
}

// parseOwner reads "uid", "uid:gid" or a bare number. Names cannot be used:
// they only mean something inside the image, and devmtls sets the owner on
// the host.
func parseOwner(p string, v any) (Owner, error) {
	s, ok := scalarString(v)
	if !ok {
		return Owner{}, fieldErr(p, "must be a numeric \"uid:gid\" string, got %s", describe(v))
	}
	s = strings.TrimSpace(s)
	uidStr, gidStr, ok := splitOwner(s)
	if !ok {
		return Owner{}, fieldErr(p, "must be a numeric \"uid:gid\" such as \"999:999\" (user names only exist inside the image), got %q", s)
	}
	uid, err1 := strconv.ParseUint(uidStr, 10, 31)
	gid := uid
	var err2 error
	if gidStr != "" {
		gid, err2 = strconv.ParseUint(gidStr, 10, 31)
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

var postgresSSLModes = []string{"require", "verify-ca", hostenv.PGSSLModeVerifyFull}

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
			return decodeMapping(p, v, keyedStrings(certs.FileSetKeys(), patch.files, asFileName), noHint)
		},
		"env": func(p string, v any) error {
			patch.env = map[string]string{}
			return decodeMapping(p, v, keyedStrings(certs.FileSetKeys(), patch.env, asEnvName), noHint)
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
	decoders["mode"] = func(p string, v any) (err error) {
		cfg.Mode, err = asParsed(p, v, certs.ParseMode)
		return err
	}
	decoders["key_type"] = func(p string, v any) (err error) {
		cfg.KeyType, err = asParsed(p, v, certs.ParseKeyType)
		return err
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
