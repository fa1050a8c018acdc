package portforward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/devmtls/devmtls/certs"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// credentialSource is where a session's cluster credentials come from: a
// Secret (secretSource, watched or read per stream connection) or a directory
// of files (fileSource, for users who may not read Secrets). Both keep the
// credentials in memory only and swap them the same way (credentialSlot).
type credentialSource interface {
	// current returns the credentials for a new connection.
	current(ctx context.Context) (*ClusterCredentials, error)
	// watched reports whether current follows changes by itself, so a
	// session may ask it per connection instead of keeping what it read.
	watched() bool
	// fingerprint is the SHA-256 fingerprint of the certificate presented
	// now, "" when there is none.
	fingerprint() string
	close()
}

// credentialSlot holds a source's current credentials and the fields they
// were made of. Credentials are rebuilt only when those fields change, so
// an update of anything else keeps the TLS sessions to the pods; new
// credentials come with a new session cache, so tickets issued for the old
// ones are dropped.
type credentialSlot struct {
	mu    sync.Mutex
	data  [][]byte // the credential fields, in credentialFields order
	creds *ClusterCredentials
	err   error // why there are no credentials
}

// credentialFields are the fields credentials are made of, in a fixed order.
func credentialFields(data map[string][]byte) [][]byte {
	var out [][]byte
	for _, keys := range [][]string{certKeys, keyKeys, caKeys} {
		for _, k := range keys {
			out = append(out, data[k])
		}
	}
	return out
}

// swap rebuilds the credentials from data when its fields changed. It
// reports whether they changed, and whether they had been set before.
// keepGood keeps the last good credentials when the new fields do not make
// any (a file caught half-written), instead of failing new connections.
func (s *credentialSlot) swap(o credentialOrigin, data map[string][]byte, keepGood bool) (changed, had bool, err error) {
	fields := credentialFields(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil && slices.EqualFunc(fields, s.data, bytes.Equal) {
		return false, true, s.err
	}
	had = s.data != nil
	creds, err := credentialsFrom(o, data)
	if err != nil && keepGood && s.creds != nil {
		return false, had, err
	}
	s.data, s.creds, s.err = fields, creds, err
	return true, had, err
}

func (s *credentialSlot) set(creds *ClusterCredentials, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.creds, s.err = nil, creds, err
}

func (s *credentialSlot) get() (*ClusterCredentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds, s.err
}

func (s *credentialSlot) fingerprint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.creds == nil {
		return ""
	}
	return certs.Fingerprint(s.creds.Certificate.Leaf)
}

// credentialSource returns the source for Secret name — or the directory of
// Options.ClusterCredsDir, which replaces every Secret — starting it on first
// use.
func (f *Forwarder) credentialSource(ctx context.Context, name string) (credentialSource, error) {
	f.secretsMu.Lock()
	defer f.secretsMu.Unlock()
	key := name
	if f.opts.ClusterCredsDir != "" {
		key = "dir:" + f.opts.ClusterCredsDir
	}
	if s, ok := f.secrets[key]; ok {
		return s, nil
	}
	var src credentialSource
	if f.opts.ClusterCredsDir != "" {
		fs, err := newFileSource(f.opts.ClusterCredsDir, f.opts.Logf, f.done)
		if err != nil {
			return nil, err
		}
		src = fs
	} else {
		s := &secretSource{f: f, namespace: f.opts.Namespace, name: name}
		if err := s.start(ctx); err != nil {
			return nil, err
		}
		src = s
	}
	select {
	case <-f.done:
		src.close()
		return nil, errors.New("forwarder closed")
	default:
	}
	if f.secrets == nil {
		f.secrets = map[string]credentialSource{}
	}
	f.secrets[key] = src
	return src, nil
}

// fileSource reads the cluster keypair from a directory: the layout the pods
// mount (/var/mtls/cert, /var/mtls/key, maybe ca) or kubernetes.io/tls's
// (tls.crt, tls.key, ca.crt), detected as for a Secret. The directory is
// the user's own (often a Secret volume or a copy of one), outside the
// environment directory; its files are read again every second and swapped
// in when they change, which also follows the kubelet's atomic ..data switch
// of a mounted Secret. A damaged or half-written file keeps the last good
// keypair in use.
type fileSource struct {
	dir  string
	logf func(string, ...any)
	slot credentialSlot
	stop chan struct{}
	once sync.Once
}

// fileSourcePoll is how often the directory is read again: a handful of
// small files, cheap next to the pings of one stream connection.
const fileSourcePoll = time.Second

func newFileSource(dir string, logf func(string, ...any), done <-chan struct{}) (*fileSource, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &fileSource{dir: abs, logf: logf, stop: make(chan struct{})}
	data, err := s.read()
	if err != nil {
		return nil, err
	}
	if _, _, err := s.slot.swap(s.origin(), data, false); err != nil {
		return nil, err
	}
	go s.follow(done)
	return s, nil
}

// CredentialsFromDir reads the cluster keypair from the files of dir, with
// the same detection of names as CredentialsFromSecret.
func CredentialsFromDir(dir string) (*ClusterCredentials, error) {
	s := &fileSource{dir: dir}
	data, err := s.read()
	if err != nil {
		return nil, err
	}
	return credentialsFrom(s.origin(), data)
}

func (s *fileSource) origin() credentialOrigin {
	return credentialOrigin{name: "directory " + s.dir, source: s.dir, noun: "files",
		fix: "put the cluster's certificate and key there as cert and key (or tls.crt and tls.key), and its CA as ca (or ca.crt) if it has one"}
}

// read returns the credential files of the directory by name; files it
// does not know are listed (not read) for the message about a missing part.
func (s *fileSource) read() (map[string][]byte, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--cluster-creds %s: no such directory; give the directory holding the cluster keypair (cert and key, or tls.crt and tls.key)", s.dir)
		}
		return nil, fmt.Errorf("--cluster-creds %s: %w", s.dir, err)
	}
	known := map[string]bool{}
	for _, keys := range [][]string{certKeys, keyKeys, caKeys} {
		for _, k := range keys {
			known[k] = true
		}
	}
	data := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") {
			continue // a Secret volume's own bookkeeping
		}
		if !known[name] {
			data[name] = nil
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			return nil, fmt.Errorf("--cluster-creds %s: %w", s.dir, err)
		}
		data[name] = b
	}
	return data, nil
}

// follow reads the directory again every fileSourcePoll until the source or
// the forwarder is closed.
func (s *fileSource) follow(done <-chan struct{}) {
	tick := time.NewTicker(fileSourcePoll)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-s.stop:
			return
		case <-done:
			return
		case <-tick.C:
		}
		data, err := s.read()
		changed := false
		if err == nil {
			changed, _, err = s.slot.swap(s.origin(), data, true)
		}
		switch {
		case err != nil && err.Error() != lastErr:
			s.logf("cluster credentials in %s: %v; new connections keep presenting the last good certificate", s.dir, err)
			lastErr = err.Error()
		case err == nil && changed:
			lastErr = ""
			s.logf("cluster credentials in %s changed; new connections present the new certificate (SHA-256 %s)", s.dir, s.slot.fingerprint())
		case err == nil:
			lastErr = ""
		}
	}
}

func (s *fileSource) current(context.Context) (*ClusterCredentials, error) { return s.slot.get() }
func (s *fileSource) watched() bool                                        { return true }
func (s *fileSource) fingerprint() string                                  { return s.slot.fingerprint() }
func (s *fileSource) close()                                               { s.once.Do(func() { close(s.stop) }) }

// SecretForbiddenError says RBAC forbids reading the Secret that holds the
// cluster credentials. It unwraps to the API server's error, so
// apierrors.IsForbidden(err) holds.
type SecretForbiddenError struct {
	Namespace, Name string
	Err             error
}

func (e *SecretForbiddenError) Error() string {
	return fmt.Sprintf("%v; so the cluster keypair in secret %s/%s cannot be read: if you hold it as files, pass --cluster-creds DIR (cert, key and ca, or tls.crt, tls.key and ca.crt)",
		forbidden(e.Err, "get", "secrets", e.Namespace), e.Namespace, e.Name)
}

// Unwrap returns the API server's refusal.
func (e *SecretForbiddenError) Unwrap() error { return e.Err }

// secretError classifies an error reading Secret name.
func secretError(err error, namespace, name string) error {
	switch {
	case apierrors.IsNotFound(err):
		return &SecretNotFoundError{Namespace: namespace, Name: name}
	case apierrors.IsForbidden(err):
		return &SecretForbiddenError{Namespace: namespace, Name: name, Err: err}
	}
	return fmt.Errorf("read secret %s/%s: %w", namespace, name, err)
}
