package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// issued is one certificate with its key, as PEM.
type issued struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

// material is everything one generation produces: the top-level identity, the
// trust anchor and (ca mode) one leaf per service.
type material struct {
	top      issued
	caPEM    []byte
	caCert   *x509.Certificate
	services map[string]issued
}

// files lays material out as the store writes it: relative path -> content,
// plus whether the file holds a private key (and so must be 0600).
func (m *material) files() map[string]fileContent {
	out := map[string]fileContent{
		FileCert:    {data: m.top.certPEM},
		FileKey:     {data: m.top.keyPEM, secret: true},
		FileCA:      {data: m.caPEM},
		FileKeyCert: {data: keyCert(m.top), secret: true},
	}
	for name, leaf := range m.services {
		dir := servicesDir + "/" + name + "/"
		out[dir+FileCert] = fileContent{data: leaf.certPEM}
		out[dir+FileKey] = fileContent{data: leaf.keyPEM, secret: true}
		out[dir+FileKeyCert] = fileContent{data: keyCert(leaf), secret: true}
	}
	return out
}

type fileContent struct {
	data   []byte
	secret bool
}

// keyCert is HAProxy's single-file layout: the key followed by the certificate,
// as `cat key.pem cert.pem > key+cert.pem` produces.
func keyCert(i issued) []byte {
	out := append([]byte{}, i.keyPEM...)
	return append(out, i.certPEM...)
}

// generate creates a fresh set of credentials for spec, valid from now.
func generate(spec Spec, now time.Time) (*material, error) {
	if spec.Mode == ModeCA {
		m, _, err := generateCA(spec, now)
		return m, err
	}
	key, err := spec.KeyType.generate()
	if err != nil {
		return nil, err
	}
	tmpl, err := baseTemplate(spec, now, spec.CommonName, spec.Names(), spec.KeyType)
	if err != nil {
		return nil, err
	}
	// The certificate is its own trust anchor, like one made with
	// `openssl req -x509`, which marks it CA:TRUE. OpenSSL-based peers (Python,
	// Node.js, HAProxy, libpq) only accept a pinned self-signed certificate as an
	// anchor when it is a CA, so the flags matter for interop.
	tmpl.IsCA = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	top, err := sign(tmpl, tmpl, key.Public(), key, key)
	if err != nil {
		return nil, err
	}
	return &material{top: top, caPEM: top.certPEM, caCert: top.cert}, nil
}

// generateCA creates a name-constrained CA, a host leaf and one leaf per service.
// The CA key is returned only so tests can try to mint a leaf outside the
// constraints; the store never writes it, so no one can issue more leaves later.
func generateCA(spec Spec, now time.Time) (*material, crypto.Signer, error) {
	caKey, err := spec.KeyType.generate()
	if err != nil {
		return nil, nil, err
	}
	caTmpl, err := baseTemplate(spec, now, spec.CommonName+" development CA", nil, spec.KeyType)
	if err != nil {
		return nil, nil, err
	}
	caTmpl.IsCA = true
	caTmpl.MaxPathLenZero = true
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	caTmpl.ExtKeyUsage = nil
	caTmpl.PermittedDNSDomainsCritical = true
	for _, n := range spec.Names() {
		if ip := net.ParseIP(n); ip != nil {
			caTmpl.PermittedIPRanges = append(caTmpl.PermittedIPRanges, hostNet(ip))
		} else {
			caTmpl.PermittedDNSDomains = append(caTmpl.PermittedDNSDomains, n)
		}
	}
	ca, err := sign(caTmpl, caTmpl, caKey.Public(), caKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	m := &material{caPEM: ca.certPEM, caCert: ca.cert, services: map[string]issued{}}
	hostNames, err := NormalizeNames(append(BaseNames(), spec.ExtraNames...))
	if err != nil {
		return nil, nil, err
	}
	if m.top, err = issueLeaf(spec, now, spec.CommonName, hostNames, ca.cert, caKey); err != nil {
		return nil, nil, err
	}
	for _, svc := range spec.Services {
		names, err := NormalizeNames(append([]string{svc}, LoopbackNames()...))
		if err != nil {
			return nil, nil, err
		}
		if m.services[svc], err = issueLeaf(spec, now, svc, names, ca.cert, caKey); err != nil {
			return nil, nil, err
		}
	}
	return m, caKey, nil
}

// issueLeaf signs a server+client leaf for names with the CA.
func issueLeaf(spec Spec, now time.Time, cn string, names []string, ca *x509.Certificate, caKey crypto.Signer) (issued, error) {
	key, err := spec.KeyType.generate()
	if err != nil {
		return issued{}, err
	}
	tmpl, err := baseTemplate(spec, now, cn, names, spec.KeyType)
	if err != nil {
		return issued{}, err
	}
	return sign(tmpl, ca, key.Public(), key, caKey)
}

func hostNet(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}

// baseTemplate is a server+client certificate template for names.
func baseTemplate(spec Spec, now time.Time, cn string, names []string, kt KeyType) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         cn,
			Organization:       []string{"devmtls development credentials"},
			OrganizationalUnit: []string{"not for production"},
		},
		// A minute of slack covers containers and VMs whose clocks trail the host's.
		NotBefore:             now.Add(-time.Minute).UTC().Truncate(time.Second),
		NotAfter:              now.Add(spec.Validity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if kt == KeyRSA2048 || kt == KeyRSA4096 {
		// RSA key exchange (TLS 1.2 non-ECDHE suites) encrypts to the key.
		t.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else {
			t.DNSNames = append(t.DNSNames, n)
		}
	}
	return t, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key, parentKey crypto.Signer) (issued, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return issued{}, fmt.Errorf("sign certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return issued{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return issued{}, err
	}
	return issued{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		// PKCS#8 ("PRIVATE KEY"), as `openssl req -nodes` writes it: the one
		// encoding Go, OpenSSL, Node.js, Python, Java and libpq all read.
		keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}
