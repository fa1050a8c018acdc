package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

// TestForwardNeverWritesTheClusterKeypair: the cluster's private key, read
// from the Secret, stays in the forward's memory. While a forward serves a
// connection with it, no file the process has open and no file under its
// home, temporary, working or environment directory holds the key in any
// encoding the forward could write it in: PEM, DER (PKCS#8 or SEC 1), the
// base64 the Secret carries, or the raw private scalar.
func TestForwardNeverWritesTheClusterKeypair(t *testing.T) {
	s := newShop(t, false)
	s.c.deployMTLS(t, s.ns, "echo", 1, "echo")
	home, tmp, work := t.TempDir(), t.TempDir(), t.TempDir()
	cmd := forwardCommand(s.c, s.dev.Dir, s.ns, "svc/echo", ":443")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "HOME="+home, "TMPDIR="+tmp, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	f := runForward(t, cmd, 2)

	// A connection through the forward: the pod demands the cluster's client
	// certificate, so the key is loaded and in use from here on.
	conn, err := tls.Dial("tcp", f.ipv4(t, 0), s.devClient())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute)) // a hang bound, not a measurement
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if echo := make([]byte, 4); func() error { _, err := io.ReadFull(conn, echo); return err }() != nil || string(echo) != "ping" {
		t.Fatalf("no echo through the forward:\n%s", f.stderr)
	}

	needles := keyEncodings(t, s.cluster.Top.KeyPEM)
	holds := func(path string) bool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v", path, err)
			return false
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				return true
			}
		}
		return false
	}
	// The scan finds the key where it is: the test's own copy of the cluster
	// keypair.
	if !holds(s.cluster.Top.Paths.Key) {
		t.Fatalf("the scan does not recognise the cluster key in %s", s.cluster.Top.Paths.Key)
	}

	fdDir := filepath.Join("/proc", strconv.Itoa(f.cmd.Process.Pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, fd := range fds {
		p := filepath.Join(fdDir, fd.Name())
		// Files have a path; sockets, pipes and anonymous inodes
		// ("socket:[…]", "anon_inode:[eventpoll]") do not.
		target, err := os.Readlink(p)
		if err != nil || !filepath.IsAbs(target) {
			continue
		}
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue // a device such as /dev/null, or closed meanwhile
		}
		open++
		if holds(p) {
			t.Errorf("the forward has a file open that holds the cluster key: %s", target)
		}
	}
	scanned := 0
	for _, dir := range []string{home, tmp, work, s.dev.Dir} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			scanned++
			if holds(p) {
				t.Errorf("%s holds the cluster key", p)
			}
			return nil
		})
	}
	t.Logf("checked %d open regular files and %d files in the forward's directories", open, scanned)
	if scanned == 0 {
		t.Error("no file was scanned: the environment directory at least holds the dev credentials")
	}
}

// keyEncodings are the byte strings that give the private key in keyPEM
// away: the PEM, its DER, PKCS#8 DER, their base64 (the first PEM line's
// worth, as a Secret's data or another PEM would carry it), and the raw
// scalar of an ECDSA key.
func keyEncodings(t *testing.T, keyPEM []byte) [][]byte {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("the cluster key is not PEM")
	}
	key, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := [][]byte{keyPEM, block.Bytes, pkcs8, []byte(base64.StdEncoding.EncodeToString(keyPEM))}
	for _, der := range [][]byte{block.Bytes, pkcs8} {
		out = append(out, []byte(base64.StdEncoding.EncodeToString(der)[:64]))
	}
	if ec, ok := key.(*ecdsa.PrivateKey); ok {
		raw, err := ec.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}
