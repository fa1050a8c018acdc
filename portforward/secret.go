package portforward

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
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
	Source      string // namespace/name of the Secret, for messages
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
	src := s.Namespace + "/" + s.Name
	pick := func(what string, keys []string, required bool) ([]byte, error) {
		for _, k := range keys {
			if v, ok := s.Data[k]; ok && len(v) > 0 {
				return v, nil
			}
		}
		if !required {
			return nil, nil
		}
		return nil, fmt.Errorf("secret %s has no %s (looked for keys %s; it has %s): recreate it with kubectl create secret generic %s --from-file=cert=cert.pem --from-file=key=key.pem",
			src, what, strings.Join(keys, ", "), describeKeys(s.Data), s.Name)
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
		return nil, fmt.Errorf("secret %s: its certificate does not parse: %v", src, err)
	}
	key, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("secret %s: its private key does not parse: %v", src, err)
	}
	if _, _, err := certs.ParseKeyPairPEM(append(slices.Clone(keyPEM), certPEM...)); err != nil {
		return nil, fmt.Errorf("secret %s: %v", src, err)
	}
	cc := &ClusterCredentials{Source: src, Roots: x509.NewCertPool(), sessions: tls.NewLRUClientSessionCache(256)}
	for _, c := range chain {
		cc.Certificate.Certificate = append(cc.Certificate.Certificate, c.Raw)
	}
	cc.Certificate.PrivateKey, cc.Certificate.Leaf = key, chain[0]
	if caPEM != nil {
		cas, err := certs.ParseCertificatesPEM(caPEM)
		if err != nil {
			return nil, fmt.Errorf("secret %s: its CA does not parse: %v", src, err)
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

func describeKeys(data map[string][]byte) string {
	if len(data) == 0 {
		return "no keys"
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "keys " + strings.Join(keys, ", ")
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
			return fmt.Errorf("the pod's certificate is not trusted by secret %s: %w", cc.Source, err)
		}
		return nil
	}
	return cfg
}
