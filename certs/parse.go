package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseCertificatesPEM reads every CERTIFICATE block in data. It fails when there
// is none, when a block does not parse, or when non-PEM bytes surround them, so a
// truncated or foreign file is reported instead of half-used.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the last PEM block (truncated or concatenated file?)")
	}
	return certs, nil
}

// ParsePrivateKeyPEM reads exactly one private key block (PKCS#8, PKCS#1 or SEC 1)
// from data. Encrypted keys are refused with a message that says so, since dev
// credentials are unencrypted by design.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	var found crypto.Signer
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; devmtls needs an unencrypted key")
		default:
			continue
		}
		if found != nil {
			return nil, errors.New("more than one private key found")
		}
		k, err := ParsePrivateKeyDER(block.Bytes)
		if err != nil {
			return nil, err
		}
		found = k
	}
	if found == nil {
		return nil, errors.New("no PEM private key block found")
	}
	return found, nil
}

// ParsePrivateKeyDER reads a DER private key in PKCS#8, PKCS#1 or SEC 1 form.
func ParsePrivateKeyDER(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return asSigner(k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("the private key does not parse as PKCS#8, PKCS#1 or SEC 1")
}

func asSigner(k any) (crypto.Signer, error) {
	switch key := k.(type) {
	case *rsa.PrivateKey:
		return key, nil
	case *ecdsa.PrivateKey:
		return key, nil
	case ed25519.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k)
}

// ParseKeyPairPEM reads a certificate and its key — from one file (HAProxy's
// key+cert) or from the concatenation of two — and checks that they belong
// together.
func ParseKeyPairPEM(data []byte) (*x509.Certificate, crypto.Signer, error) {
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, nil, err
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, nil, err
	}
	if err := matchKey(certs[0], key); err != nil {
		return nil, nil, err
	}
	return certs[0], key, nil
}

// matchKey checks that key is the private half of cert's public key.
func matchKey(cert *x509.Certificate, key crypto.Signer) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the private key does not match the certificate")
	}
	return nil
}
