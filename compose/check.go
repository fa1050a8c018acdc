package compose

import (
	"path"
	"strings"

	"github.com/devmtls/devmtls/certs"
)

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
	for _, k := range certs.FileSetKeys() {
		if err := add(*s.Files.Field(k), "files."+k); err != nil {
			return Settings{}, err
		}
	}
	if s.HasFormat(certs.FormatPKCS12) {
		for _, n := range []string{certs.PKCS12KeyStore, certs.PKCS12TrustStore} {
			if err := add(n, "the pkcs12 format's "+n); err != nil {
				return Settings{}, err
			}
		}
	}
	if s.HasFormat(certs.FormatPKCS8DER) {
		for _, n := range []string{certs.DERFileCert, certs.DERFileKey, certs.DERFileCA} {
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
