package compose

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/hostenv"
	"go.yaml.in/yaml/v4"
)

// FuzzExtension feeds arbitrary compose documents to the x-devmtls parser: it
// must never panic, every error must be a *FieldError naming an x-devmtls
// path, and every accepted configuration must resolve to settings devmtls can
// mount safely.
func FuzzExtension(f *testing.F) {
	for _, seed := range []string{
		"x-devmtls: {mode: ca, names: [a.example], validity: 7d}\nservices:\n  api:\n    x-devmtls: {mount_path: /tls, formats: [postgres]}\n",
		"services:\n  db:\n    x-devmtls:\n      user: '999:999'\n      files: {cert: tls.crt, key: tls.key}\n      env: {cert: TLS_CERT, key_cert: ''}\n",
		"services:\n  a: {x-devmtls: false}\n  b: {x-devmtls: true}\n  c: {x-devmtls: }\n",
		"x-devmtls: {enabled: false, mount_path: relative, forwards: [{target: svc/x}]}\n",
		"services:\n  a:\n    x-devmtls: {formats: [pkcs12, pkcs8-der], pkcs12: {password: on}, postgres: {mount_path: /var/mtls/pg}}\n",
		"x-devmtls: [1, 2]\nservices: {a: {x-devmtls: 7}}\n",
		"services:\n  a:\n    x-devmtls: {user: 12345678901, mount_path: '/a:b'}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc map[string]any
		if yaml.Unmarshal(data, &doc) != nil {
			return
		}
		check := func(err error) {
			if err == nil {
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.Contains(fe.Path, Extension) || fe.Problem == "" {
				t.Fatalf("error %v (%T) does not name an x-devmtls field", err, err)
			}
		}
		cfg, err := parseConfig(doc[Extension])
		check(err)
		if err != nil {
			return
		}
		services, _ := doc["services"].(map[string]any)
		for name, svc := range services {
			m, _ := svc.(map[string]any)
			raw, has := m[Extension]
			sc := serviceConfig{}
			if has {
				sc, err = parseServiceConfig(name, raw)
				check(err)
				if err != nil {
					continue
				}
			}
			s, err := resolveSettings(name, cfg, sc)
			check(err)
			if err != nil {
				continue
			}
			for _, p := range []string{s.MountPath, s.PostgresMountPath} {
				if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
					t.Fatalf("accepted mount path %q", p)
				}
			}
			for _, n := range []string{s.Files.Cert, s.Files.Key, s.Files.CA, s.Files.KeyCert} {
				if n == "" || strings.Contains(n, "/") || n == "." || n == ".." {
					t.Fatalf("accepted file name %q", n)
				}
			}
			seen := map[string]bool{}
			for k, v := range s.Environment() {
				if hostenv.ValidateName(k) != nil || seen[k] {
					t.Fatalf("accepted variable %q=%q", k, v)
				}
				seen[k] = true
			}
		}
	})
}

// FuzzCopiesRecord feeds arbitrary content to the parser of compose/state.json,
// the record of the copy directories devmtls may remove: whatever it accepts
// names only service names and devmtls's own copy directories.
func FuzzCopiesRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"services":{"api":["mtls"],"db":["mtls","postgres"]}}`))
	f.Add([]byte(`{"version":1,"services":{"..":["mtls"]}}`))
	f.Add([]byte(`{"version":1,"services":{"api":["../../home"]}}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := parseRecord("state.json", data)
		if err != nil {
			return
		}
		for name, dirs := range rec.Services {
			if certs.ValidateServiceName(name) != nil || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
				t.Fatalf("accepted service %q", name)
			}
			for _, d := range dirs {
				if d != mainCopy && d != postgresCopy {
					t.Fatalf("accepted directory %q", d)
				}
			}
		}
	})
}

// FuzzForwardsFile: whatever a forwards file holds, every forward accepted
// is one the background forwards would accept back (Validate), with a unique
// name.
func FuzzForwardsFile(f *testing.F) {
	for _, seed := range []string{
		"forwards:\n  - {target: svc/orders, namespace: shop, ports: [\"8443:443\"]}\n",
		"forwards:\n  - {target: deploy/b, creds: ./c, protocol: postgres, as: db, ports: [5432, \"9187:metrics\"]}\n",
		"forwards:\n  - {target: svc/a, secret: s, creds: c, ports: [\"1\"]}\n",
		"forwards: []\n",
		"forward: 1\n",
		"services: {a: {}}\n",
		"- 1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, isCompose, err := parseForwardsFile("forwards.yaml", data)
		if err != nil || isCompose {
			return
		}
		seen := map[string]bool{}
		for _, fw := range fs {
			if err := fw.Validate(); err != nil {
				t.Fatalf("accepted %+v: %v", fw, err)
			}
			if seen[fw.As] {
				t.Fatalf("accepted %s twice", fw.As)
			}
			seen[fw.As] = true
		}
	})
}
