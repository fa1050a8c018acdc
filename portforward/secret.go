package portforward

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/devmtls/devmtls/certs"
	corev1 "k8s.io/api/core/v1"
)

// DefaultSecret is the Secret the cluster keeps its mTLS keypair in, unless a
// Service's annotation or --secret names another.
const DefaultSecret = "mtls"

// SecretAnnotation on a Service names the Secret whose keypair its pods accept.
const SecretAnnotation = "devmtls.dev/secret"

// ServerNameAnnotation on a Service names the DNS name its pods' certificate
// carries, so devmtls can verify it without --server-name.
const ServerNameAnnotation = "devmtls.dev/server-name"

// The Secret keys tried, in order, for each part of the keypair: cert and key
// (the files the pods mount, /var/mtls/cert and /var/mtls/key) first, then
// kubernetes.io/tls and cert-manager's.
var (
	certKeys = []string{"cert", "tls.crt"}
	keyKeys  = []string{"key", "tls.key"}
	caKeys   = []string{"ca", "ca.crt", "cacert"}
)

// ClusterCredentials are the keypair and trust anchors read from a Secret. They
// exist only in memory: devmtls never writes cluster secrets to disk.
type ClusterCredentials struct {
	Source string // namespace/name of the Secret, or the directory of the files
	// origin says where they came from in messages: "secret NS/NAME",
	// "directory DIR".
	origin      string
	Certificate tls.Certificate
	// Roots verify the pod's certificate: the Secret's CA, or the Secret's own
	// certificate when there is no CA: a self-signed certificate that is its
	// own trust anchor (pinning).
	Roots  *x509.CertPool
	Pinned bool
	pinned *x509.Certificate
	// sessions lets connections to the same pods resume TLS sessions, which
	// skips the signatures and certificate checks of a full handshake.
	sessions tls.ClientSessionCache
}

// CredentialsFromSecret reads a keypair from a Secret, detecting the key names.
func CredentialsFromSecret(s *corev1.Secret) (*ClusterCredentials, error) {
	return credentialsFrom(secretOrigin(s), s.Data)
}

// credentialOrigin names where credential fields came from, for messages.
type credentialOrigin struct {
	name   string // "secret NS/NAME", "directory DIR"
	source string // ClusterCredentials.Source
	noun   string // what the fields are called there: keys, files
	fix    string // what to do when a part is missing
}

// credentialsFrom builds credentials from named fields — a Secret's keys or
// a directory's files — with one detection of the names (certKeys, keyKeys,
// caKeys) for both.
func credentialsFrom(o credentialOrigin, data map[string][]byte) (*ClusterCredentials, error) {
	pick := func(what string, keys []string, required bool) ([]byte, error) {
		for _, k := range keys {
			if v, ok := data[k]; ok && len(v) > 0 {
				return v, nil
			}
		}
		if !required {
			return nil, nil
		}
		return nil, fmt.Errorf("%s has no %s (looked for %s %s; it has %s): %s",
			o.name, what, o.noun, strings.Join(keys, ", "), describeKeys(data, o.noun), o.fix)
	}
	certPEM, err := pick("certificate", certKeys, true)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pick("private key", keyKeys, true)
	if err != nil {
		return nil, err
	}
	caPEM, _ := pick("CA", caKeys, false)

	chain, err := certs.ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: its certificate does not parse: %v", o.name, err)
	}
	key, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: its private key does not parse: %v", o.name, err)
	}
	if _, _, err := certs.ParseKeyPairPEM(append(slices.Clone(keyPEM), certPEM...)); err != nil {
		return nil, fmt.Errorf("%s: %v", o.name, err)
	}
	cc := &ClusterCredentials{Source: o.source, origin: o.name, Roots: x509.NewCertPool(), sessions: tls.NewLRUClientSessionCache(256)}
	for _, c := range chain {
		cc.Certificate.Certificate = append(cc.Certificate.Certificate, c.Raw)
	}
	cc.Certificate.PrivateKey, cc.Certificate.Leaf = key, chain[0]
	if caPEM != nil {
		cas, err := certs.ParseCertificatesPEM(caPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: its CA does not parse: %v", o.name, err)
		}
		for _, c := range cas {
			cc.Roots.AddCert(c)
		}
	} else {
		cc.Pinned, cc.pinned = true, chain[0]
		cc.Roots.AddCert(chain[0])
	}
	return cc, nil
}

func describeKeys(data map[string][]byte, noun string) string {
	if len(data) == 0 {
		return "no " + noun
	}
	return noun + " " + strings.Join(slices.Sorted(maps.Keys(data)), ", ")
}

// ClientConfig is the TLS configuration toward a pod. With serverName set the
// pod's certificate must name it. Without, the chain (or the pin) is what is
// verified: the cluster's mTLS anchor is private to its workloads, and a
// self-signed certificate that is its own trust anchor often carries no DNS
// name at all.
func (cc *ClusterCredentials) ClientConfig(serverName string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cc.Certificate},
		RootCAs:      cc.Roots,
		ServerName:   serverName,
		// VerifyConnection also runs on resumed sessions, so pinning holds.
		ClientSessionCache: cc.sessions,
	}
	if serverName != "" {
		return cfg
	}
	// Verification happens in VerifyConnection below, with the same roots but
	// no host name; InsecureSkipVerify only turns off the host-name check.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the pod presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		if cc.Pinned && leaf.Equal(cc.pinned) {
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: cc.Roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return fmt.Errorf("the pod's certificate is not trusted by %s: %w", cc.origin, err)
		}
		return nil
	}
	return cfg
}

// secretOrigin names a Secret in messages about its credentials.
func secretOrigin(s *corev1.Secret) credentialOrigin {
	src := s.Namespace + "/" + s.Name
	return credentialOrigin{name: "secret " + src, source: src, noun: "keys",
		fix: "recreate it with kubectl create secret generic " + s.Name + " --from-file=cert=cert.pem --from-file=key=key.pem"}
}
