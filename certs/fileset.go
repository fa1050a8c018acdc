package certs

// The credential files, by their names inside the environment directory. They
// are the names the cluster's Secret volume uses (/var/mtls/cert,
// /var/mtls/key), so a service that reads /var/mtls/cert in the cluster reads
// the same name locally; key+cert is HAProxy's single file.
const (
	FileCert    = "cert"
	FileKey     = "key"
	FileCA      = "ca"
	FileKeyCert = "key+cert"
	servicesDir = "services"
)

// FileSet is the one description of an identity's four credential files — the
// certificate, its private key, the trust anchor, and key and certificate in
// one file (HAProxy) — each named by what its user needs: an absolute path
// (Identity.Paths), a file name inside a mount directory (x-devmtls files),
// or the variable that carries the path (x-devmtls env, devmtls env).
type FileSet struct {
	Cert    string `json:"cert"`
	Key     string `json:"key"`
	CA      string `json:"ca"`
	KeyCert string `json:"key_cert"`
}

// FileSetKeys are the keys of a FileSet's entries, in order, as JSON and the
// x-devmtls files and env mappings spell them.
func FileSetKeys() []string { return []string{"cert", "key", "ca", "key_cert"} }

// Field returns the entry of s that key (one of FileSetKeys) names, or nil
// for any other key.
func (s *FileSet) Field(key string) *string {
	switch key {
	case "cert":
		return &s.Cert
	case "key":
		return &s.Key
	case "ca":
		return &s.CA
	case "key_cert":
		return &s.KeyCert
	}
	return nil
}

// Values returns the entries in the order of FileSetKeys.
func (s FileSet) Values() []string { return []string{s.Cert, s.Key, s.CA, s.KeyCert} }

// DefaultFileNames are the credential files' names: cert, key, ca, key+cert.
func DefaultFileNames() FileSet {
	return FileSet{Cert: FileCert, Key: FileKey, CA: FileCA, KeyCert: FileKeyCert}
}
