package compose

import (
	"slices"
	"strconv"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/hostenv"
)

// Extension is the compose-file key devmtls reads, at the top level (defaults
// for the environment) and in each service (that service's settings).
const Extension = "x-devmtls"

// Defaults for a service's settings. They are the cluster's layout, so a
// service that reads /var/mtls/cert in the cluster reads the same path locally.
const (
	DefaultMountPath         = "/var/mtls"
	DefaultPostgresMountPath = "/var/postgres-mtls"
)

// The variables of the pkcs12 format (the libpq ones of the postgres format
// are hostenv's).
const (
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
	MountPath string `json:"mount_path"`
	// Files are the credential files' names inside MountPath.
	Files certs.FileSet `json:"files"`
	// Env are the variables naming the files; "" sets none.
	Env certs.FileSet `json:"env"`
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
		MountPath: DefaultMountPath, Files: certs.DefaultFileNames(), Env: hostenv.DefaultNames(),
		PostgresMountPath: DefaultPostgresMountPath, PostgresSSLMode: hostenv.PGSSLModeVerifyFull,
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
		*s.Files.Field(k) = v
	}
	for k, v := range p.env {
		*s.Env.Field(k) = v
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
