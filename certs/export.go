package certs

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/devmtls/devmtls/internal/atomicfile"
	"github.com/devmtls/devmtls/internal/choice"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Format is an export layout.
type Format string

// The export layouts. Each writes the files under the names its consumers
// expect (see ExportFiles).
const (
	FormatPEM      Format = "pem"       // cert, key, ca
	FormatHAProxy  Format = "haproxy"   // key+cert, ca
	FormatPostgres Format = "postgres"  // cacert, cert, key (libpq / Cloud SQL layout)
	FormatPKCS8DER Format = "pkcs8-der" // cert.der, key.der (PKCS#8), ca.der
	FormatPKCS12   Format = "pkcs12"    // keystore.p12, truststore.p12 (Java)
)

// The file names of the export layouts besides the credential files
// themselves. They are the names their consumers expect (the postgres layout
// is the managed-PostgreSQL one, cacert/cert/key), so they are fixed; compose
// mounts the same files under the same names.
const (
	PostgresFileCA   = "cacert"
	PostgresFileCert = FileCert
	PostgresFileKey  = FileKey
	DERFileCert      = "cert.der"
	DERFileKey       = "key.der"
	DERFileCA        = "ca.der"
	PKCS12KeyStore   = "keystore.p12"
	PKCS12TrustStore = "truststore.p12"
)

// Formats lists every export format in help order.
func Formats() []Format {
	return []Format{FormatPEM, FormatHAProxy, FormatPostgres, FormatPKCS8DER, FormatPKCS12}
}

// ParseFormat accepts a format name.
func ParseFormat(s string) (Format, error) {
	return choice.Parse("format", s, Formats(), nil)
}

// DefaultPKCS12Password is the password Java tooling assumes for keystores
// (mkcert uses it too); dev credentials are not protected by it anyway.
const DefaultPKCS12Password = pkcs12.DefaultPassword

// ExportedFile is one file an export produces.
type ExportedFile struct {
	Name   string // file name inside the output directory
	Data   []byte
	Secret bool // holds a private key: written 0600
}

// ExportFiles renders id's credentials in format f. password is used only by
// pkcs12 ("" means DefaultPKCS12Password).
func (c *Credentials) ExportFiles(id *Identity, f Format, password string) ([]ExportedFile, error) {
	switch f {
	case FormatPEM:
		return []ExportedFile{{FileCert, id.CertPEM, false}, {FileKey, id.KeyPEM, true}, {FileCA, c.CAPEM, false}}, nil
	case FormatHAProxy:
		return []ExportedFile{{FileKeyCert, append(slices.Clone(id.KeyPEM), id.CertPEM...), true}, {FileCA, c.CAPEM, false}}, nil
	case FormatPostgres:
		return []ExportedFile{{PostgresFileCA, c.CAPEM, false}, {PostgresFileCert, id.CertPEM, false}, {PostgresFileKey, id.KeyPEM, true}}, nil
	case FormatPKCS8DER:
		keyDER, err := x509.MarshalPKCS8PrivateKey(id.Key)
		if err != nil {
			return nil, err
		}
		return []ExportedFile{{DERFileCert, id.Certificate.Raw, false}, {DERFileKey, keyDER, true}, {DERFileCA, c.CA.Raw, false}}, nil
	case FormatPKCS12:
		if password == "" {
			password = DefaultPKCS12Password
		}
		var chain []*x509.Certificate
		if !c.CA.Equal(id.Certificate) {
			chain = []*x509.Certificate{c.CA}
		}
		// Modern2023 (PBES2/AES-256, HMAC-SHA-256) is read by Java 11.0.12+,
		// OpenSSL 1.1.1+ and .NET; the legacy 3DES/RC2 encodings are not needed.
		ks, err := pkcs12.Modern2023.Encode(id.Key, id.Certificate, chain, password)
		if err != nil {
			return nil, fmt.Errorf("encode PKCS#12 keystore: %w", err)
		}
		ts, err := pkcs12.Modern2023.EncodeTrustStore([]*x509.Certificate{c.CA}, password)
		if err != nil {
			return nil, fmt.Errorf("encode PKCS#12 truststore: %w", err)
		}
		return []ExportedFile{{PKCS12KeyStore, ks, true}, {PKCS12TrustStore, ts, false}}, nil
	}
	return nil, fmt.Errorf("unknown format %q", string(f))
}

// exportMarker records which files in an output directory devmtls wrote, so a
// later export may replace them but never a file the user put there.
const exportMarker = ".devmtls-export"

// WriteExport writes files into dir (created 0700 if missing): keys 0600,
// certificates 0644, each atomically. It refuses to replace a file that an
// earlier export did not write.
func WriteExport(dir string, files []ExportedFile) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create output directory %s: %w", dir, err)
	}
	markerPath := filepath.Join(dir, exportMarker)
	owned := map[string]bool{}
	if data, err := os.ReadFile(markerPath); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				owned[line] = true
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", markerPath, err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if _, err := os.Lstat(p); err == nil && !owned[f.Name] {
			return nil, fmt.Errorf("%s already exists and was not written by devmtls; choose another --out directory or remove it", p)
		}
	}
	for _, f := range files {
		owned[f.Name] = true
	}
	var marker strings.Builder
	marker.WriteString("# Files written by `devmtls certs export`; a later export may replace them.\n")
	for _, name := range slices.Sorted(maps.Keys(owned)) {
		marker.WriteString(name + "\n")
	}
	// The marker goes first: if we crash mid-export, the next export may still
	// replace the files it claimed.
	if err := atomicfile.WriteFile(markerPath, []byte(marker.String()), 0o644); err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		perm := os.FileMode(0o644)
		if f.Secret {
			perm = 0o600
		}
		if err := atomicfile.WriteFile(p, f.Data, perm); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}
