package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func TestExportLayouts(t *testing.T) {
	for _, m := range []Mode{ModeShared, ModeCA} {
		s, _ := newStore(t)
		c := ensure(t, s, Request{Mode: m, Services: []string{"db"}}).Credentials
		id, err := c.Service("db")
		if err != nil {
			t.Fatal(err)
		}
		want := map[Format]map[string]os.FileMode{
			FormatPEM:      {"cert": 0o644, "key": 0o600, "ca": 0o644},
			FormatHAProxy:  {"key+cert": 0o600, "ca": 0o644},
			FormatPostgres: {"cacert": 0o644, "cert": 0o644, "key": 0o600},
			FormatPKCS8DER: {"cert.der": 0o644, "key.der": 0o600, "ca.der": 0o644},
			FormatPKCS12:   {"keystore.p12": 0o600, "truststore.p12": 0o644},
		}
		for f, files := range want {
			t.Run(string(m)+"/"+string(f), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				exported, err := c.ExportFiles(id, f, "")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := WriteExport(out, exported); err != nil {
					t.Fatal(err)
				}
				if got := mode(t, out); got != 0o700 {
					t.Errorf("output dir mode %o", got)
				}
				for name, perm := range files {
					if got := mode(t, filepath.Join(out, name)); got != perm {
						t.Errorf("%s mode %o, want %o", name, got, perm)
					}
				}
				checkExported(t, c, id, f, out)
			})
		}
	}
}

// checkExported parses the exported files back and checks they hold id and the anchor.
func checkExported(t *testing.T, c *Credentials, id *Identity, f Format, dir string) {
	t.Helper()
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	switch f {
	case FormatPEM, FormatPostgres:
		caName := "ca"
		if f == FormatPostgres {
			caName = "cacert"
		}
		cert, key, err := ParseKeyPairPEM(append(read("cert"), read("key")...))
		if err != nil || !cert.Equal(id.Certificate) || matchKey(cert, key) != nil {
			t.Fatalf("pair: %v", err)
		}
		if !bytes.Equal(read(caName), c.CAPEM) {
			t.Fatal("ca differs")
		}
	case FormatHAProxy:
		cert, _, err := ParseKeyPairPEM(read("key+cert"))
		if err != nil || !cert.Equal(id.Certificate) {
			t.Fatalf("key+cert: %v", err)
		}
	case FormatPKCS8DER:
		cert, err := x509.ParseCertificate(read("cert.der"))
		if err != nil || !cert.Equal(id.Certificate) {
			t.Fatalf("cert.der: %v", err)
		}
		key, err := ParsePrivateKeyDER(read("key.der"))
		if err != nil || matchKey(cert, key) != nil {
			t.Fatalf("key.der: %v", err)
		}
	case FormatPKCS12:
		key, cert, chain, err := pkcs12.DecodeChain(read("keystore.p12"), DefaultPKCS12Password)
		if err != nil || !cert.Equal(id.Certificate) {
			t.Fatalf("keystore: %v", err)
		}
		if _, _, _, err := pkcs12.DecodeChain(read("keystore.p12"), "wrong"); err == nil {
			t.Fatal("keystore opened with the wrong password")
		}
		if signer, ok := key.(interface{ Public() crypto.PublicKey }); !ok || matchKey(cert, signer.(crypto.Signer)) != nil {
			t.Fatal("keystore key does not match its certificate")
		}
		if c.Mode == ModeCA && (len(chain) != 1 || !chain[0].Equal(c.CA)) {
			t.Fatalf("keystore chain = %d certs, want the CA", len(chain))
		}
		trusted, err := pkcs12.DecodeTrustStore(read("truststore.p12"), DefaultPKCS12Password)
		if err != nil || len(trusted) != 1 || !trusted[0].Equal(c.CA) {
			t.Fatalf("truststore: %v", err)
		}
	}
}

func TestExportNeverOverwritesForeignFiles(t *testing.T) {
	s, _ := newStore(t)
	c := ensure(t, s, Request{}).Credentials
	out := t.TempDir()
	mine := filepath.Join(out, "key")
	os.WriteFile(mine, []byte("mine"), 0o600)
	files, _ := c.ExportFiles(c.Top, FormatPEM, "")
	_, err := WriteExport(out, files)
	if err == nil || !strings.Contains(err.Error(), mine) {
		t.Fatalf("got %v, want an error naming %s", err, mine)
	}
	if data, _ := os.ReadFile(mine); string(data) != "mine" {
		t.Fatal("foreign file overwritten")
	}
	// A second export into a directory devmtls wrote replaces its own files.
	out2 := t.TempDir()
	if _, err := WriteExport(out2, files); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteExport(out2, files); err != nil {
		t.Fatalf("re-export: %v", err)
	}
}

func TestParseHelpers(t *testing.T) {
	if _, err := ParseFormat("jks"); err == nil || !strings.Contains(err.Error(), "pkcs12") {
		t.Errorf("ParseFormat: %v", err)
	}
	if _, err := ParseKeyType("dsa"); err == nil || !strings.Contains(err.Error(), "ecdsa-p256") {
		t.Errorf("ParseKeyType: %v", err)
	}
	for in, want := range map[string]string{"30d": "720h0m0s", "36h": "36h0m0s", "1d": "24h0m0s"} {
		d, err := ParseValidity(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseValidity(%q) = %s, %v", in, d, err)
		}
	}
	for _, bad := range []string{"", "x", "10m", "-1d", "1000d", "3.5d"} {
		if _, err := ParseValidity(bad); err == nil {
			t.Errorf("ParseValidity(%q) accepted", bad)
		}
	}
	// However large, a validity past the maximum says what the maximum is.
	for _, long := range []string{"826d", "19801h", "99999999999999999999d", "9999999999999h", "19000h99999999999999m"} {
		if _, err := ParseValidity(long); err == nil || !strings.Contains(err.Error(), "at most 825d") {
			t.Errorf("ParseValidity(%q): %v, want the maximum named", long, err)
		}
	}
	for in, want := range map[string]string{"LocalHost.": "localhost", "::0001": "::1", "*.dev.test": "*.dev.test", "my_svc": "my_svc"} {
		if got, err := NormalizeName(in); err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a b", "-x", "x..y", "*", "a.*.b", strings.Repeat("a", 64)} {
		if _, err := NormalizeName(bad); err == nil {
			t.Errorf("NormalizeName(%q) accepted", bad)
		}
	}
}
