package certs

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Identity is one certificate with its key: the environment's shared keypair,
// the host leaf in ca mode, or one service's leaf.
type Identity struct {
	Name        string // "" for the top-level identity, else the service name
	Certificate *x509.Certificate
	Key         crypto.Signer
	CertPEM     []byte
	KeyPEM      []byte
	// Paths are the absolute paths of the identity's credential files.
	Paths FileSet
}

// TLSCertificate returns the identity as a crypto/tls certificate, with the CA
// appended in ca mode so peers that only know the anchor can build the chain.
func (id *Identity) TLSCertificate(ca *x509.Certificate) tls.Certificate {
	chain := [][]byte{id.Certificate.Raw}
	if ca != nil && !ca.Equal(id.Certificate) {
		chain = append(chain, ca.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: id.Key, Leaf: id.Certificate}
}

// Credentials are one loaded generation of an environment's credentials.
type Credentials struct {
	Dir         string
	Mode        Mode
	KeyType     KeyType
	Validity    time.Duration
	CommonName  string
	ExtraNames  []string
	Names       []string // every name of the environment (SANs / name constraints)
	Services    []string
	NotBefore   time.Time
	NotAfter    time.Time
	Fingerprint string // SHA-256 of the top-level certificate, AB:CD:… as openssl prints it
	// CA is the trust anchor: the shared certificate itself, or the dev CA.
	CA    *x509.Certificate
	CAPEM []byte
	// Top is the shared keypair (shared mode) or the host leaf (ca mode), the
	// identity host processes and local forward listeners use.
	Top      *Identity
	services map[string]*Identity
}

// Service returns the identity a service presents: its own leaf in ca mode, the
// shared keypair in shared mode. In ca mode an unknown service is an error.
func (c *Credentials) Service(name string) (*Identity, error) {
	if name == "" || c.Mode == ModeShared {
		return c.Top, nil
	}
	id, ok := c.services[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("environment %s has no credentials for service %q (known: %s); add it to the compose project or run `devmtls certs` again",
			c.Dir, name, strings.Join(c.Services, ", "))
	}
	return id, nil
}

// Pool returns a certificate pool holding only the environment's trust anchor.
func (c *Credentials) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.CA)
	return p
}

// ServerConfig is a TLS 1.2+ server configuration that presents id and requires
// a client certificate issued by (or pinned to) this environment.
func (c *Credentials) ServerConfig(id *Identity) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{id.TLSCertificate(c.CA)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.Pool(),
	}
}

// ClientConfig is a TLS 1.2+ client configuration that presents id and trusts
// only this environment's anchor, verifying serverName.
func (c *Credentials) ClientConfig(id *Identity, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{id.TLSCertificate(c.CA)},
		RootCAs:      c.Pool(),
		ServerName:   serverName,
	}
}

// Fingerprint returns the SHA-256 fingerprint of cert in the form
// `openssl x509 -fingerprint -sha256` prints.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// loadCredentials parses the verified file contents of one generation.
func loadCredentials(dir string, st *state, contents map[string][]byte) (*Credentials, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	spec, err := st.spec()
	if err != nil {
		return nil, damaged(filepath.Join(abs, stateFile), err)
	}
	caPEM := contents[FileCA]
	cas, err := ParseCertificatesPEM(caPEM)
	if err != nil {
		return nil, damaged(filepath.Join(abs, FileCA), err)
	}
	c := &Credentials{
		Dir: abs, Mode: spec.Mode, KeyType: spec.KeyType, Validity: spec.Validity, CommonName: spec.CommonName,
		ExtraNames: slices.Clone(spec.ExtraNames), Names: slices.Clone(st.Names), Services: slices.Clone(spec.Services),
		CA: cas[0], CAPEM: caPEM, services: map[string]*Identity{},
	}
	if c.Top, err = loadIdentity(abs, "", "", contents); err != nil {
		return nil, err
	}
	if kt, err := keyTypeOf(c.Top.Certificate.PublicKey); err != nil || kt != c.KeyType {
		return nil, damaged(c.Top.Paths.Cert, fmt.Errorf("its key type does not match state.json's %s", c.KeyType))
	}
	c.NotBefore, c.NotAfter = c.Top.Certificate.NotBefore, c.Top.Certificate.NotAfter
	c.Fingerprint = Fingerprint(c.Top.Certificate)
	if c.Mode == ModeCA {
		for _, svc := range c.Services {
			id, err := loadIdentity(abs, svc, servicesDir+"/"+svc+"/", contents)
			if err != nil {
				return nil, err
			}
			c.services[svc] = id
		}
	}
	return c, nil
}

func loadIdentity(abs, name, prefix string, contents map[string][]byte) (*Identity, error) {
	p := func(f string) string { return filepath.Join(abs, filepath.FromSlash(prefix+f)) }
	id := &Identity{Name: name, CertPEM: contents[prefix+FileCert], KeyPEM: contents[prefix+FileKey],
		Paths: FileSet{Cert: p(FileCert), Key: p(FileKey), CA: filepath.Join(abs, FileCA), KeyCert: p(FileKeyCert)}}
	certs, err := ParseCertificatesPEM(id.CertPEM)
	if err != nil {
		return nil, damaged(id.Paths.Cert, err)
	}
	key, err := ParsePrivateKeyPEM(id.KeyPEM)
	if err != nil {
		return nil, damaged(id.Paths.Key, err)
	}
	if err := matchKey(certs[0], key); err != nil {
		return nil, damaged(id.Paths.Key, err)
	}
	id.Certificate, id.Key = certs[0], key
	return id, nil
}
