package certs

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/devmtls/devmtls/internal/envdir"
)

// Seeds: a real generation's files, so the fuzzer starts from valid input.
func seedFiles(f *testing.F) *Credentials {
	s := &Store{Dir: filepath.Join(f.TempDir(), ".devmtls")}
	res, err := s.Ensure(context.Background(), Request{Mode: ModeCA, Services: []string{"api"}})
	if err != nil {
		f.Fatal(err)
	}
	return res.Credentials
}

func FuzzParseCertificatesPEM(f *testing.F) {
	c := seedFiles(f)
	f.Add(c.Top.CertPEM)
	f.Add(append(c.Top.CertPEM, c.CAPEM...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificatesPEM(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	c := seedFiles(f)
	f.Add(c.Top.KeyPEM)
	f.Add(append(c.Top.KeyPEM, c.Top.CertPEM...))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParsePrivateKeyPEM(data)
		if err == nil && key == nil {
			t.Fatal("no error and no key")
		}
	})
}

func FuzzParsePrivateKeyDER(f *testing.F) {
	c := seedFiles(f)
	files, err := c.ExportFiles(c.Top, FormatPKCS8DER, "")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		f.Add(file.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParsePrivateKeyDER(data)
		if err == nil && key.Public() == nil {
			t.Fatal("key without a public half")
		}
	})
}

func FuzzParseKeyPairPEM(f *testing.F) {
	c := seedFiles(f)
	f.Add(append(c.Top.KeyPEM, c.Top.CertPEM...))
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, key, err := ParseKeyPairPEM(data)
		if err == nil && matchKey(cert, key) != nil {
			t.Fatal("returned a mismatched pair")
		}
	})
}

// FuzzLoadState feeds arbitrary state.json content to Load: it must fail with an
// error (never panic, never read outside the environment) unless the content
// really describes the files on disk.
func FuzzLoadState(f *testing.F) {
	c := seedFiles(f)
	good, err := os.ReadFile(filepath.Join(c.Dir, stateFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"files":{"cert":"00"}}`))
	f.Add([]byte(`{"version":2,"generation":"../x","files":{"cert":"00"}}`))
	f.Add([]byte(`{"version":1,"mode":"ca","files":{"services/../../x/cert":"00"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), ".devmtls")
		copyEnv(t, c.Dir, dir)
		os.WriteFile(filepath.Join(dir, stateFile), data, 0o600)
		creds, err := (&Store{Dir: dir}).Load(context.Background())
		if err == nil && creds.Top == nil {
			t.Fatal("loaded credentials without an identity")
		}
		if st, err := parseState(stateFile, data); err == nil {
			if st.Version == stateVersion && !envdir.IsGeneration(st.Generation) {
				t.Fatalf("accepted generation %q", st.Generation)
			}
			for rel := range st.Files {
				if !validRel(rel) {
					t.Fatalf("accepted file %q", rel)
				}
			}
		}
	})
}

// copyEnv copies an environment directory, links included.
func copyEnv(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"localhost", "::1", "*.a.b", "A.B.", "127.0.0.1", "x_y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeName(s)
		if err != nil {
			return
		}
		again, err := NormalizeName(n)
		if err != nil || again != n {
			t.Fatalf("NormalizeName not idempotent: %q -> %q -> %q (%v)", s, n, again, err)
		}
	})
}
