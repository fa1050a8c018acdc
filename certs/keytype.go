package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// KeyType names a private-key algorithm and size.
type KeyType string

// The key types devmtls can generate. ECDSA P-256 is the default: it is fast to
// generate and every TLS stack our users run (Go, OpenSSL 1.1+/3, Node.js, Java,
// HAProxy, libpq) accepts it.
const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyECDSAP384 KeyType = "ecdsa-p384"
	KeyRSA2048   KeyType = "rsa2048"
	KeyRSA4096   KeyType = "rsa4096"
	KeyEd25519   KeyType = "ed25519"
)

// DefaultKeyType is used when neither the user nor the stored environment chose one.
const DefaultKeyType = KeyECDSAP256

// KeyTypes lists every supported key type, in the order help text shows them.
func KeyTypes() []KeyType {
	return []KeyType{KeyECDSAP256, KeyECDSAP384, KeyRSA2048, KeyRSA4096, KeyEd25519}
}

// ParseKeyType accepts a key type name as users type it (case-insensitive).
func ParseKeyType(s string) (KeyType, error) {
	k := KeyType(strings.ToLower(strings.TrimSpace(s)))
	for _, known := range KeyTypes() {
		if k == known {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown key type %q: use one of %s", s, joinKeyTypes())
}

func joinKeyTypes() string {
	names := make([]string, 0, len(KeyTypes()))
	for _, k := range KeyTypes() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// generate creates a new private key of this type.
func (k KeyType) generate() (crypto.Signer, error) {
	switch k {
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unknown key type %q", string(k))
}

// keyTypeOf reports the KeyType of a public key, so a loaded certificate can be
// checked against the environment's declared type.
func keyTypeOf(pub crypto.PublicKey) (KeyType, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return KeyECDSAP256, nil
		case elliptic.P384():
			return KeyECDSAP384, nil
		}
		return "", fmt.Errorf("unsupported ECDSA curve %s", p.Curve.Params().Name)
	case *rsa.PublicKey:
		switch p.N.BitLen() {
		case 2048:
			return KeyRSA2048, nil
		case 4096:
			return KeyRSA4096, nil
		}
		return "", fmt.Errorf("unsupported RSA key size %d", p.N.BitLen())
	case ed25519.PublicKey:
		return KeyEd25519, nil
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}
