package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/envdir"
	"github.com/devmtls/devmtls/internal/generation"
)

func newStore(t *testing.T) (*Store, *time.Time) {
	t.Helper()
	now := time.Now()
	return &Store{Dir: filepath.Join(t.TempDir(), ".devmtls"), Now: func() time.Time { return now }}, &now
}

func ensure(t *testing.T, s *Store, req Request) *Result {
	t.Helper()
	res, err := s.Ensure(context.Background(), req)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return res
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestEnsureCreatesSharedEnvironment(t *testing.T) {
	s, _ := newStore(t)
	res := ensure(t, s, Request{})
	if res.Action != Created {
		t.Fatalf("action = %s, want created", res.Action)
	}
	c := res.Credentials
	if c.Mode != ModeShared || c.KeyType != KeyECDSAP256 || c.Validity != DefaultValidity {
		t.Fatalf("defaults = %s %s %s", c.Mode, c.KeyType, c.Validity)
	}
	if got, want := mode(t, s.Dir), os.FileMode(0o700); got != want {
		t.Errorf("dir mode %o, want %o", got, want)
	}
	for name, want := range map[string]os.FileMode{FileKey: 0o600, FileKeyCert: 0o600, FileCert: 0o644, FileCA: 0o644, stateFile: 0o600} {
		if got := mode(t, filepath.Join(s.Dir, name)); got != want {
			t.Errorf("%s mode %o, want %o", name, got, want)
		}
	}
	gi, err := os.ReadFile(filepath.Join(s.Dir, ".gitignore"))
	if err != nil || !slices.Contains(strings.Split(string(gi), "\n"), "*") {
		t.Errorf(".gitignore = %q, %v; want a line '*'", gi, err)
	}
	cert := c.Top.Certificate
	if !cert.IsCA || cert.CheckSignatureFrom(cert) != nil {
		t.Errorf("shared certificate must be a self-signed anchor (IsCA=%v)", cert.IsCA)
	}
	if !bytes.Equal(c.CAPEM, c.Top.CertPEM) {
		t.Error("in shared mode the ca file must be the certificate itself")
	}
	for _, n := range []string{"localhost", "host.docker.internal"} {
		if cert.VerifyHostname(n) != nil {
			t.Errorf("certificate does not cover %s", n)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if cert.VerifyHostname(ip) != nil {
			t.Errorf("certificate does not cover %s", ip)
		}
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got < DefaultValidity || got > DefaultValidity+2*time.Minute {
		t.Errorf("lifetime %s, want about %s", got, DefaultValidity)
	}
	kc, err := os.ReadFile(c.Top.Paths.KeyCert)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kc, append(slices.Clone(c.Top.KeyPEM), c.Top.CertPEM...)) {
		t.Error("key+cert must be the key followed by the certificate")
	}
	if _, _, err := ParseKeyPairPEM(kc); err != nil {
		t.Errorf("key+cert does not parse as a pair: %v", err)
	}
}

func TestEnsureIsIdempotent(t *testing.T) {
	s, _ := newStore(t)
	first := ensure(t, s, Request{})
	before := snapshot(t, s.Dir)
	second := ensure(t, s, Request{})
	if second.Action != Unchanged {
		t.Fatalf("second Ensure: %s (%s), want unchanged", second.Action, second.Reason)
	}
	if first.Credentials.Fingerprint != second.Credentials.Fingerprint {
		t.Error("fingerprint changed")
	}
	if after := snapshot(t, s.Dir); !mapsEqual(before, after) {
		t.Error("an unchanged Ensure rewrote files")
	}
}

// snapshot maps each file in dir to its content and modification time, and
// each link to its target.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == lockFile {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[p] = "-> " + target
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		out[p] = string(data) + fi.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRenewal(t *testing.T) {
	cases := []struct {
		name       string
		advance    time.Duration
		req        Request
		wantAction Action
		wantReason string
	}{
		{"fresh", 0, Request{}, Unchanged, ""},
		{"two thirds left", 9 * 24 * time.Hour, Request{}, Unchanged, ""},
		{"less than a third left", 21 * 24 * time.Hour, Request{}, Renewed, "expires in"},
		{"expired", 31 * 24 * time.Hour, Request{}, Renewed, "expired"},
		{"clock moved back", -24 * time.Hour, Request{}, Renewed, "not valid yet"},
		{"extra name", 0, Request{ExtraNames: []string{"api.test"}}, Renewed, "+api.test"},
		{"service added", 0, Request{Services: []string{"orders"}}, Renewed, "+orders"},
		{"mode", 0, Request{Mode: ModeCA}, Renewed, "mode changed"},
		{"key type", 0, Request{KeyType: KeyEd25519}, Renewed, "key type changed"},
		{"common name", 0, Request{CommonName: "payments"}, Renewed, "common name"},
		{"validity alone keeps the pair", 0, Request{Validity: 7 * 24 * time.Hour}, Unchanged, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, now := newStore(t)
			first := ensure(t, s, Request{})
			*now = now.Add(tc.advance)
			res := ensure(t, s, tc.req)
			if res.Action != tc.wantAction || !strings.Contains(res.Reason, tc.wantReason) {
				t.Fatalf("got %s (%q), want %s (%q)", res.Action, res.Reason, tc.wantAction, tc.wantReason)
			}
			changed := res.Credentials.Fingerprint != first.Credentials.Fingerprint
			if changed != (tc.wantAction == Renewed) {
				t.Errorf("fingerprint changed = %v for action %s", changed, res.Action)
			}
			if res.Action == Renewed && !res.Credentials.NotAfter.After(now.Add(DefaultValidity/2)) {
				t.Errorf("renewed credentials expire %s, too early", res.Credentials.NotAfter)
			}
		})
	}
}

func TestRequestKeepsStoredChoices(t *testing.T) {
	s, _ := newStore(t)
	ensure(t, s, Request{Mode: ModeCA, KeyType: KeyECDSAP384, ExtraNames: []string{"db.test"}, Services: []string{"api"}})
	res := ensure(t, s, Request{})
	if res.Action != Unchanged {
		t.Fatalf("an empty request changed the environment: %s (%s)", res.Action, res.Reason)
	}
	c := res.Credentials
	if c.Mode != ModeCA || c.KeyType != KeyECDSAP384 || !slices.Contains(c.Names, "db.test") || !slices.Equal(c.Services, []string{"api"}) {
		t.Fatalf("stored choices lost: %s %s %v %v", c.Mode, c.KeyType, c.Names, c.Services)
	}
	// An explicit empty list removes the extras.
	res = ensure(t, s, Request{ExtraNames: []string{}})
	if res.Action != Renewed || slices.Contains(res.Credentials.Names, "db.test") {
		t.Fatalf("empty ExtraNames did not remove db.test: %s %v", res.Action, res.Credentials.Names)
	}
}

func TestInvalidRequests(t *testing.T) {
	for name, req := range map[string]Request{
		"bad name":    {ExtraNames: []string{"not a name"}},
		"bad mode":    {Mode: "mesh"},
		"bad key":     {KeyType: "dsa"},
		"bad service": {Services: []string{"../etc"}},
		"long cn":     {CommonName: strings.Repeat("x", 65)},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := newStore(t)
			if _, err := s.Ensure(context.Background(), req); err == nil {
				t.Fatal("accepted an invalid request")
			}
			if _, err := os.Stat(filepath.Join(s.Dir, stateFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Error("an invalid request still wrote state.json")
			}
		})
	}
}

func TestEveryKeyTypeHandshakes(t *testing.T) {
	for _, kt := range KeyTypes() {
		for _, m := range []Mode{ModeShared, ModeCA} {
			t.Run(string(kt)+"/"+string(m), func(t *testing.T) {
				if testing.Short() && kt == KeyRSA4096 {
					t.Skip("rsa4096 generation is slow; covered without -short")
				}
				s, _ := newStore(t)
				c := ensure(t, s, Request{KeyType: kt, Mode: m, Services: []string{"api", "worker"}}).Credentials
				server, err := c.Service("api")
				if err != nil {
					t.Fatal(err)
				}
				client, err := c.Service("worker")
				if err != nil {
					t.Fatal(err)
				}
				if m == ModeCA && server.Certificate.Equal(client.Certificate) {
					t.Fatal("ca mode must give each service its own leaf")
				}
				peer := handshake(t, c.ServerConfig(server), c.ClientConfig(client, "api"))
				if m == ModeCA && peer != "worker" {
					t.Errorf("server saw client %q, want worker", peer)
				}
				// The host identity reaches a service through a published port.
				handshake(t, c.ServerConfig(server), c.ClientConfig(c.Top, "localhost"))
			})
		}
	}
}

// handshake runs a real TLS handshake over loopback TCP and returns the client
// certificate's common name as the server saw it.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			peer <- "accept: " + err.Error()
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- "handshake: " + err.Error()
			return
		}
		tc.Write([]byte("ok"))
		peer <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), clientCfg)
	if err != nil {
		t.Fatalf("client handshake: %v (server: %s)", err, <-peer)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read after handshake: %q %v", buf, err)
	}
	if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %x", v)
	}
	return <-peer
}

func TestHandshakeRefusesForeignClient(t *testing.T) {
	a, _ := newStore(t)
	b, _ := newStore(t)
	ca := ensure(t, a, Request{}).Credentials
	cb := ensure(t, b, Request{}).Credentials
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(ca.Top))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer conn.Close()
		errc <- conn.(*tls.Conn).Handshake()
	}()
	// The client trusts server A but presents environment B's certificate.
	cfg := cb.ClientConfig(cb.Top, "localhost")
	cfg.RootCAs = ca.Pool()
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err == nil {
		// TLS 1.3 reports the server's rejection on the first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("client with another environment's certificate was accepted")
	}
	if serr := <-errc; serr == nil {
		t.Fatal("server accepted another environment's client certificate")
	}
}

func TestCAModeNameConstraints(t *testing.T) {
	spec, err := Request{Mode: ModeCA, Services: []string{"api", "orders"}, ExtraNames: []string{"dev.example.com"}}.resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, caKey, err := generateCA(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !m.caCert.PermittedDNSDomainsCritical || !slices.Contains(m.caCert.PermittedDNSDomains, "orders") {
		t.Fatalf("CA constraints: %v", m.caCert.PermittedDNSDomains)
	}
	roots := x509.NewCertPool()
	roots.AddCert(m.caCert)
	verify := func(c *x509.Certificate, name string) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	if err := verify(m.services["orders"].cert, "orders"); err != nil {
		t.Errorf("service leaf: %v", err)
	}
	if err := verify(m.top.cert, "dev.example.com"); err != nil {
		t.Errorf("host leaf: %v", err)
	}
	// A leaf the CA signs for a name outside the environment must not verify,
	// even though the CA's signature on it is good.
	for _, outside := range []string{"bank.example.org", "example.com"} {
		rogue, err := issueLeaf(spec, time.Now(), outside, []string{outside}, m.caCert, caKey)
		if err != nil {
			t.Fatal(err)
		}
		err = verify(rogue.cert, outside)
		var inv x509.CertificateInvalidError
		if !errors.As(err, &inv) || inv.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("rogue leaf for %s: got %v, want a name-constraint violation", outside, err)
		}
	}
	rogueIP, err := issueLeaf(spec, time.Now(), "ip", []string{"10.0.0.1"}, m.caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rogueIP.cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("rogue leaf for 10.0.0.1 verified")
	}
}

func TestCAModeDoesNotStoreCAKey(t *testing.T) {
	s, _ := newStore(t)
	c := ensure(t, s, Request{Mode: ModeCA, Services: []string{"api"}}).Credentials
	err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != FileKey && d.Name() != FileKeyCert {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key, err := ParsePrivateKeyPEM(data)
		if err != nil {
			return err
		}
		if matchKey(c.CA, key) == nil {
			t.Errorf("%s holds the CA's private key", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "services", "api", FileKey)); err != nil {
		t.Errorf("service leaf key: %v", err)
	}
}

func TestServiceLeavesFollowTheProject(t *testing.T) {
	s, _ := newStore(t)
	ensure(t, s, Request{Mode: ModeCA, Services: []string{"api", "worker"}})
	c := ensure(t, s, Request{Services: []string{"api"}}).Credentials
	if _, err := os.Stat(filepath.Join(s.Dir, "services", "worker")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the departed service's leaf is still there: %v", err)
	}
	if _, err := c.Service("worker"); err == nil {
		t.Error("Service(worker) succeeded after worker left")
	}
}

func TestDamagedOrChangedFilesAreReportedNotOverwritten(t *testing.T) {
	cases := map[string]func(dir string) string{
		"truncated cert": func(dir string) string {
			p := filepath.Join(dir, FileCert)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o644)
			return p
		},
		"replaced key": func(dir string) string {
			p := filepath.Join(dir, FileKey)
			os.WriteFile(p, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
			return p
		},
		"missing ca": func(dir string) string {
			os.Remove(filepath.Join(dir, "..data", FileCA))
			return filepath.Join(dir, FileCA)
		},
		"garbage state": func(dir string) string {
			p := filepath.Join(dir, stateFile)
			os.WriteFile(p, []byte("{not json"), 0o600)
			return p
		},
		"state from the future": func(dir string) string {
			p := filepath.Join(dir, stateFile)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(data, []byte(`"version": 2`), []byte(`"version": 9`), 1), 0o600)
			return p
		},
		"state pointing outside": func(dir string) string {
			p := filepath.Join(dir, stateFile)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(data, []byte(`"cert":`), []byte(`"../../etc/passwd":`), 1), 0o600)
			return p
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newStore(t)
			ensure(t, s, Request{})
			bad := damage(s.Dir)
			before := snapshot(t, s.Dir)
			_, err := s.Ensure(context.Background(), Request{})
			if err == nil {
				t.Fatal("Ensure accepted a damaged environment")
			}
			msg := err.Error()
			if !strings.Contains(msg, bad) || !strings.Contains(msg, "devmtls certs rotate") || strings.Count(msg, "\n") > 0 {
				t.Errorf("error %q must be one line naming %s and the fix", msg, bad)
			}
			if after := snapshot(t, s.Dir); !mapsEqual(before, after) {
				t.Error("Ensure modified files after reporting damage")
			}
			if _, err := s.Load(context.Background()); err == nil {
				t.Error("Load accepted a damaged environment")
			}
			res, err := s.Rotate(context.Background(), Request{})
			if err != nil {
				t.Fatalf("Rotate did not recover: %v", err)
			}
			if _, err := s.Ensure(context.Background(), Request{}); err != nil {
				t.Fatalf("after Rotate (%s): %v", res.Action, err)
			}
		})
	}
}

func TestForeignFilesAreNotOverwritten(t *testing.T) {
	s, _ := newStore(t)
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mine := []byte("my own certificate, not devmtls's\n")
	p := filepath.Join(s.Dir, FileCert)
	if err := os.WriteFile(p, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := s.Ensure(context.Background(), Request{})
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != p || !strings.Contains(err.Error(), "not written by devmtls") {
		t.Fatalf("got %v, want a FileError naming %s", err, p)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, mine) {
		t.Fatal("the user's file was overwritten")
	}
}

func TestInterruptedCommitIsCompleted(t *testing.T) {
	// Reproduce the state a crash leaves between the commit point (state.json
	// names the new generation) and the switch of ..data to it.
	s, _ := newStore(t)
	old := ensure(t, s, Request{}).Credentials
	d, err := envdir.Open(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := readState(d)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := st.spec()
	m, err := generate(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var gf []generation.File
	next := *st
	next.Files = map[string]string{}
	for rel, f := range m.files() {
		gf = append(gf, generation.File{Name: rel, Data: f.data, Mode: 0o600})
		next.Files[rel] = digest(f.data)
	}
	w := s.writer(d)
	if next.Generation, err = w.Prepare(gf); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(next)
	if err := d.WriteFile(stateFile, data, 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	c, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load after an interrupted commit: %v", err)
	}
	if c.Fingerprint != Fingerprint(m.top.cert) || c.Fingerprint == old.Fingerprint {
		t.Fatal("Load did not complete the committed generation")
	}
	if cur, _ := w.Current(); cur != next.Generation {
		t.Errorf("..data points to %s, want %s", cur, next.Generation)
	}
	if onDisk, _ := os.ReadFile(filepath.Join(s.Dir, FileCert)); !bytes.Equal(onDisk, m.top.certPEM) {
		t.Error("the visible cert is not the committed one")
	}
	if gens, _ := w.Generations(); len(gens) != 1 {
		t.Errorf("generations left behind: %v", gens)
	}
}

func TestUnfinishedGenerationIsNeitherUsedNorKept(t *testing.T) {
	s, _ := newStore(t)
	want := ensure(t, s, Request{}).Credentials.Fingerprint
	// A crash before the commit point leaves a generation state.json does
	// not name; it must not be used, and the next commit removes it.
	junk := filepath.Join(s.Dir, "..2001_01_01_00_00_00.000000000")
	if err := os.Mkdir(junk, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(junk, FileCert), []byte("half a certificate"), 0o600)
	res := ensure(t, s, Request{})
	if res.Action != Unchanged || res.Credentials.Fingerprint != want {
		t.Fatalf("got %s", res.Action)
	}
	if _, err := s.Rotate(context.Background(), Request{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(junk); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the unfinished generation was not removed")
	}
}

func TestRemovedVisibleLinkIsRestored(t *testing.T) {
	s, _ := newStore(t)
	want := ensure(t, s, Request{}).Credentials.Fingerprint
	if err := os.Remove(filepath.Join(s.Dir, FileKey)); err != nil {
		t.Fatal(err)
	}
	if res := ensure(t, s, Request{}); res.Credentials.Fingerprint != want {
		t.Fatal("credentials changed")
	}
	if target, err := os.Readlink(filepath.Join(s.Dir, FileKey)); err != nil || target != "..data/key" {
		t.Errorf("key -> %q, %v", target, err)
	}
}

// TestFlatEnvironmentMovesIntoAGeneration: an environment written by a
// devmtls before generations (plain files, state version 1) keeps its keypair
// and gets the current layout.
func TestFlatEnvironmentMovesIntoAGeneration(t *testing.T) {
	s, _ := newStore(t)
	c := ensure(t, s, Request{Mode: ModeCA, Services: []string{"api"}}).Credentials
	flat := t.TempDir()
	st := map[string]any{}
	data, _ := os.ReadFile(filepath.Join(s.Dir, stateFile))
	json.Unmarshal(data, &st)
	for rel := range st["files"].(map[string]any) {
		content, err := os.ReadFile(filepath.Join(s.Dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(flat, rel)), 0o700)
		os.WriteFile(filepath.Join(flat, rel), content, 0o600)
	}
	st["version"] = 1
	delete(st, "generation")
	data, _ = json.Marshal(st)
	os.WriteFile(filepath.Join(flat, stateFile), data, 0o600)

	fs := &Store{Dir: flat}
	loaded, err := fs.Load(context.Background())
	if err != nil || loaded.Fingerprint != c.Fingerprint {
		t.Fatalf("Load of a flat environment: %v", err)
	}
	res, err := fs.Ensure(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != Unchanged || res.Credentials.Fingerprint != c.Fingerprint {
		t.Fatalf("got %s %s", res.Action, res.Reason)
	}
	for _, name := range []string{FileCert, FileKey, FileCA, FileKeyCert, servicesDir} {
		if target, err := os.Readlink(filepath.Join(flat, name)); err != nil || target != "..data/"+name {
			t.Errorf("%s -> %q, %v", name, target, err)
		}
	}
	api, _ := res.Credentials.Service("api")
	if got, err := os.ReadFile(api.Paths.Key); err != nil || !bytes.Equal(got, api.KeyPEM) {
		t.Errorf("services/api/key after the move: %v", err)
	}
}

func TestConcurrentEnsureInOneProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devmtls")
	var wg sync.WaitGroup
	fps := make([]string, 8)
	errs := make([]error, 8)
	for i := range fps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := (&Store{Dir: dir}).Ensure(context.Background(), Request{})
			errs[i] = err
			if err == nil {
				fps[i] = res.Credentials.Fingerprint
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v", i, err)
		}
		if fps[i] != fps[0] {
			t.Fatalf("goroutines saw different credentials: %v", fps)
		}
	}
}

func TestLoadOfMissingEnvironment(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.Load(context.Background())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "devmtls certs") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Load created the environment directory")
	}
}

func TestLockTimeoutNamesTheLock(t *testing.T) {
	s, _ := newStore(t)
	ensure(t, s, Request{})
	d, err := envdir.Open(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := s.lock(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	other := &Store{Dir: s.Dir, LockTimeout: 50 * time.Millisecond}
	_, err = other.Ensure(context.Background(), Request{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(s.Dir, lockFile)) {
		t.Fatalf("got %v, want an error naming the lock file", err)
	}
}
