package compose

import (
	"path"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/hostenv"
)

// envVar is one variable a container gets.
type envVar struct{ name, what, value string }

// envVars lists the variables a container gets, with the setting each comes
// from and its value (the file's path in the container).
func (s Settings) envVars() []envVar {
	var out []envVar
	in := func(name string) string { return path.Join(s.MountPath, name) }
	for _, k := range certs.FileSetKeys() {
		if n := *s.Env.Field(k); n != "" {
			out = append(out, envVar{n, "env." + k, in(*s.Files.Field(k))})
		}
	}
	if s.HasFormat(certs.FormatPostgres) {
		pg := func(f string) string { return path.Join(s.PostgresMountPath, f) }
		out = append(out,
			envVar{hostenv.PGSSLCertVar, "the postgres format", pg(certs.PostgresFileCert)},
			envVar{hostenv.PGSSLKeyVar, "the postgres format", pg(certs.PostgresFileKey)},
			envVar{hostenv.PGSSLRootCertVar, "the postgres format", pg(certs.PostgresFileCA)},
			envVar{hostenv.PGSSLModeVar, "the postgres format", s.PostgresSSLMode})
	}
	if s.HasFormat(certs.FormatPKCS12) {
		out = append(out,
			envVar{EnvKeyStore, "the pkcs12 format", in(certs.PKCS12KeyStore)},
			envVar{EnvTrustStore, "the pkcs12 format", in(certs.PKCS12TrustStore)},
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
