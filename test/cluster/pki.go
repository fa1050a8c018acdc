package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// certValidity is long enough for any test run or demo session and short
// enough that a leaked test credential is worthless soon.
const certValidity = 7 * 24 * time.Hour

// authority is a CA that signs the cluster's certificates.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

func newAuthority(cn string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}, nil
}

func loadAuthority(certFile, keyFile string) (*authority, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("no PEM data in %s or %s", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", keyFile)
	}
	return &authority{cert: cert, key: signer, certPEM: certPEM}, nil
}

// leaf describes a certificate to issue.
type leaf struct {
	cn     string
	orgs   []string
	ips    []net.IP
	dns    []string
	server bool
	client bool
}

// issue signs a new keypair and returns certificate and key in PEM.
func (a *authority) issue(l leaf) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.cn, Organization: l.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		IPAddresses:  l.ips,
		DNSNames:     l.dns,
	}
	if l.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if l.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
}

// issueFiles issues a keypair into dir/name.crt and dir/name.key.
func (a *authority) issueFiles(dir, name string, l leaf) (certFile, keyFile string, err error) {
	certPEM, keyPEM, err := a.issue(l)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func (a *authority) writeFiles(dir, name string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), a.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), pemBlock("PRIVATE KEY", keyDER), 0o600)
}

// writeServiceAccountKey writes the key pair the API server signs and
// verifies service account tokens with (and kube-controller-manager mints
// them with).
func writeServiceAccountKey(dir string) (keyFile, pubFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(keyFile, pemBlock("PRIVATE KEY", keyDER), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, os.WriteFile(pubFile, pemBlock("PUBLIC KEY", pubDER), 0o644)
}

// writeKubeconfig writes a self-contained kubeconfig (certificates
// embedded), so it can be copied or read by another user's tools.
func writeKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["devmtls-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["devmtls-test"] = &clientcmdapi.Context{Cluster: "devmtls-test", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "devmtls-test"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

// writeFileAtomic writes via a temp file and rename, so a reader (kubectl
// in another shell) never sees a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

// writePKI generates the cluster's credentials the way kubeadm lays them
// out: a cluster CA for the API server, kubelet and every client, separate
// etcd and front-proxy CAs, and the service account signing key; plus the kubeconfigs of the
// admin (DIR/kubeconfig) and of each component.
func writePKI(l layout, server, nodeName string) error {
	dir := filepath.Join(l.dir, "pki")
	ca, err := newAuthority("devmtls-test-cluster-ca")
	if err != nil {
		return err
	}
	if err := ca.writeFiles(dir, "ca"); err != nil {
		return err
	}
	etcdCA, err := newAuthority("devmtls-test-etcd-ca")
	if err != nil {
		return err
	}
	if err := etcdCA.writeFiles(dir, "etcd-ca"); err != nil {
		return err
	}
	frontProxyCA, err := newAuthority("devmtls-test-front-proxy-ca")
	if err != nil {
		return err
	}
	if err := frontProxyCA.writeFiles(dir, "front-proxy-ca"); err != nil {
		return err
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	issued := []struct {
		ca   *authority
		name string
		leaf leaf
	}{
		{etcdCA, "etcd-server", leaf{cn: "etcd", ips: loopback, dns: []string{"localhost"}, server: true, client: true}},
		{etcdCA, "apiserver-etcd-client", leaf{cn: "kube-apiserver-etcd-client", client: true}},
		{ca, "apiserver", leaf{cn: "kube-apiserver", server: true,
			ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}}},
		{ca, "apiserver-kubelet-client", leaf{cn: kubeletClientName, client: true}},
		{frontProxyCA, "front-proxy-client", leaf{cn: "front-proxy-client", client: true}},
		{ca, "kubelet", leaf{cn: nodeName, ips: loopback, dns: []string{nodeName, "localhost"}, server: true}},
	}
	for _, is := range issued {
		if _, _, err := is.ca.issueFiles(dir, is.name, is.leaf); err != nil {
			return err
		}
	}
	if _, _, err := writeServiceAccountKey(dir); err != nil {
		return err
	}
	kubeconfigs := []struct {
		path string
		leaf leaf
	}{
		{filepath.Join(l.dir, "kubeconfig"), leaf{cn: "kubernetes-admin", orgs: []string{"system:masters"}, client: true}},
		{l.pki("controller-manager.kubeconfig"), leaf{cn: "system:kube-controller-manager", client: true}},
		{l.pki("scheduler.kubeconfig"), leaf{cn: "system:kube-scheduler", client: true}},
		// The Node authorizer and NodeRestriction recognise a kubelet by
		// this name and group.
		{l.pki("kubelet.kubeconfig"), leaf{cn: "system:node:" + nodeName, orgs: []string{"system:nodes"}, client: true}},
	}
	for _, kc := range kubeconfigs {
		certPEM, keyPEM, err := ca.issue(kc.leaf)
		if err != nil {
			return err
		}
		if err := writeKubeconfig(kc.path, server, ca.certPEM, certPEM, keyPEM, kc.leaf.cn); err != nil {
			return err
		}
	}
	return nil
}
