package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/hostenv"
)

// writeProject writes files (name -> content) into a new directory.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, dir string, opts LoadOptions) (*Project, error) {
	t.Helper()
	opts.WorkingDir = dir
	return Load(context.Background(), opts)
}

func mustLoad(t *testing.T, dir string, opts LoadOptions) *Project {
	t.Helper()
	p, err := load(t, dir, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func TestDefaultsWithoutExtension(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  api:\n    image: x\n  worker:\n    image: x\n"})
	p := mustLoad(t, dir, LoadOptions{})
	if p.Name != filepath.Base(dir) || p.Dir != dir {
		t.Errorf("name %q dir %q, want %q in %q", p.Name, p.Dir, filepath.Base(dir), dir)
	}
	if got := p.ServiceNames(); !slices.Equal(got, []string{"api", "worker"}) {
		t.Fatalf("services %v", got)
	}
	s := p.Services[0]
	if s.MountPath != "/var/mtls" || s.Files != certs.DefaultFileNames() || s.Env != hostenv.DefaultNames() || len(s.Formats) != 0 || s.User != nil {
		t.Errorf("default settings %+v", s.Settings)
	}
	env := s.Environment()
	want := map[string]string{"MTLS_CERT": "/var/mtls/cert", "MTLS_KEY": "/var/mtls/key", "MTLS_CA": "/var/mtls/ca", "MTLS_KEY_CERT": "/var/mtls/key+cert"}
	if len(env) != len(want) {
		t.Errorf("env %v, want %v", env, want)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	r := p.CertsRequest()
	if r.Mode != "" || r.KeyType != "" || r.Validity != 0 || r.ExtraNames != nil || !slices.Equal(r.Services, []string{"api", "worker"}) {
		t.Errorf("request %+v: without x-devmtls only the services are asked for", r)
	}
}

func TestFullExtension(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": `
x-devmtls:
  mode: ca
  key_type: rsa2048
  validity: 7d
  common_name: shop-dev
  names: [shop.local, 10.0.0.7]
  mount_path: /run/tls
  files: {key_cert: bundle.pem}
  env: {key_cert: ""}
  user: "1000:1000"
services:
  api:
    image: x
  db:
    image: x
    user: "999"
    x-devmtls:
      mount_path: /etc/db/tls/
      formats: [postgres, pem, pkcs12, pkcs8-der]
      postgres: {mount_path: /var/pg, sslmode: verify-ca}
      pkcs12: {password: s3cret}
      files: {cert: tls.crt, key: tls.key}
      env: {cert: TLS_CERT}
  worker:
    image: x
    user: "2000:3000"
    x-devmtls: true
  docs:
    image: x
    x-devmtls: false
`})
	p := mustLoad(t, dir, LoadOptions{})
	r := p.CertsRequest()
	if r.Mode != certs.ModeCA || r.KeyType != certs.KeyRSA2048 || r.Validity != 7*24*time.Hour || r.CommonName != "shop-dev" ||
		!slices.Equal(r.ExtraNames, []string{"shop.local", "10.0.0.7"}) || !slices.Equal(r.Services, []string{"api", "db", "worker"}) {
		t.Errorf("request %+v", r)
	}
	if !slices.Equal(p.OptedOut, []string{"docs"}) {
		t.Errorf("opted out %v", p.OptedOut)
	}
	api, _ := p.Service("api")
	if api.MountPath != "/run/tls" || api.Files.KeyCert != "bundle.pem" || api.Env.KeyCert != "" || *api.User != (Owner{1000, 1000}) {
		t.Errorf("api inherits the top-level defaults: %+v", api.Settings)
	}
	if _, ok := api.Environment()["MTLS_KEY_CERT"]; ok {
		t.Error(`env.key_cert: "" must not set MTLS_KEY_CERT`)
	}
	db, _ := p.Service("db")
	if db.MountPath != "/etc/db/tls" || db.Files.Cert != "tls.crt" || db.Files.Key != "tls.key" || db.Files.KeyCert != "bundle.pem" {
		t.Errorf("db settings %+v", db.Settings)
	}
	if !slices.Equal(db.Formats, []certs.Format{certs.FormatPKCS12, certs.FormatPKCS8DER, certs.FormatPostgres}) {
		t.Errorf("formats %v (pem is always there, so it is dropped)", db.Formats)
	}
	env := db.Environment()
	for k, v := range map[string]string{"TLS_CERT": "/etc/db/tls/tls.crt", "MTLS_KEY": "/etc/db/tls/tls.key", "PGSSLCERT": "/var/pg/cert",
		"PGSSLKEY": "/var/pg/key", "PGSSLROOTCERT": "/var/pg/cacert", "PGSSLMODE": "verify-ca", "MTLS_KEYSTORE": "/etc/db/tls/keystore.p12",
		"MTLS_TRUSTSTORE": "/etc/db/tls/truststore.p12", "MTLS_KEYSTORE_PASSWORD": "s3cret"} {
		if env[k] != v {
			t.Errorf("db %s=%q, want %q", k, env[k], v)
		}
	}
	if o, ok := db.Owner(); !ok || o != (Owner{1000, 1000}) {
		t.Errorf("db owner %v %v: x-devmtls user (the top-level default) wins over compose user:", o, ok)
	}
	w, _ := p.Service("worker")
	w.User = nil
	if o, ok := w.Owner(); !ok || o != (Owner{2000, 3000}) {
		t.Errorf("worker owner %v %v: falls back to the numeric compose user:", o, ok)
	}
	if _, err := p.Service("docs"); err == nil || !strings.Contains(err.Error(), "x-devmtls: false") {
		t.Errorf("Service(docs) = %v", err)
	}
}

func TestOptInOnly(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": `
x-devmtls: {enabled: false}
services:
  api: {image: x, x-devmtls: {}}
  redis: {image: x}
  worker: {image: x, x-devmtls: true}
`})
	p := mustLoad(t, dir, LoadOptions{})
	if !slices.Equal(p.ServiceNames(), []string{"api", "worker"}) || !slices.Equal(p.OptedOut, []string{"redis"}) {
		t.Errorf("in %v out %v", p.ServiceNames(), p.OptedOut)
	}
}

func TestNamedUserWarning(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  db: {image: x, user: postgres}\n  api: {image: x, user: '10:10'}\n"})
	p := mustLoad(t, dir, LoadOptions{})
	db, _ := p.Service("db")
	if _, ok := db.Owner(); ok {
		t.Error("a user name has no owner on the host")
	}
	if w := db.NamedUserWarning(); !strings.Contains(w, `service db runs as user "postgres"`) || !strings.Contains(w, "x-devmtls.user") {
		t.Errorf("warning %q", w)
	}
	api, _ := p.Service("api")
	if api.NamedUserWarning() != "" {
		t.Error("numeric users need no warning")
	}
}

func TestBadExtensionErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"relative mount path", "services:\n  api:\n    image: x\n    x-devmtls:\n      mount_path: mtls\n",
			`compose.yaml: services.api.x-devmtls.mount_path: must be an absolute path, got "mtls"`},
		{"unknown service key", "services:\n  api:\n    image: x\n    x-devmtls:\n      mountpath: /x\n",
			`compose.yaml: services.api.x-devmtls.mountpath: unknown key (known keys: env, files, formats, mount_path, pkcs12, postgres, user)`},
		{"wrong service type", "services:\n  api:\n    image: x\n    x-devmtls: 42\n",
			`compose.yaml: services.api.x-devmtls: must be false (opt out), true or a mapping of settings, got a number (42)`},
		{"wrong formats type", "services:\n  api:\n    image: x\n    x-devmtls:\n      formats: postgres\n",
			`compose.yaml: services.api.x-devmtls.formats: must be a list of strings, got a string ("postgres")`},
		{"unknown format", "services:\n  api:\n    image: x\n    x-devmtls:\n      formats: [postgres, jks]\n",
			`compose.yaml: services.api.x-devmtls.formats[1]: unknown format "jks": use one of pem, haproxy, postgres, pkcs12, pkcs8-der`},
		{"named user", "services:\n  api:\n    image: x\n    x-devmtls:\n      user: postgres\n",
			`compose.yaml: services.api.x-devmtls.user: must be a numeric "uid:gid" such as "999:999" (user names only exist inside the image), got "postgres"`},
		{"top-level only key", "services:\n  api:\n    image: x\n    x-devmtls:\n      mode: ca\n",
			`compose.yaml: services.api.x-devmtls.mode: only allowed in the top-level x-devmtls (it applies to the whole environment)`},
		{"top-level wrong type", "x-devmtls: [a]\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls: must be a mapping, got a list`},
		{"bad mode", "x-devmtls: {mode: mesh}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.mode: unknown mode "mesh": use shared or ca`},
		{"bad validity", "x-devmtls: {validity: 30}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.validity: must be a duration such as 30d or 720h, got a number (30)`},
		{"bad name", "x-devmtls: {names: [ok.example, 'bad name']}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.names[1]: invalid name "bad name": not a DNS name or IP address`},
		{"forwards not a list", "x-devmtls: {forwards: {target: svc/x}}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards: must be a list of forwards such as {target: svc/orders, ports: ["443"]}, got a mapping`},
		{"forward without target", "x-devmtls: {forwards: [{ports: [443]}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].target: is required, e.g. target: svc/orders`},
		{"forward bad target", "x-devmtls: {forwards: [{target: cm/x, ports: [443]}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].target: unknown resource type "cm" in "cm/x": use pod, svc, deploy, sts or rs`},
		{"forward without ports", "x-devmtls: {forwards: [{target: svc/orders}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].ports: is required: the ports containers use, e.g. ports: ["443"]`},
		{"forward random port", "x-devmtls: {forwards: [{target: svc/orders, ports: [':443']}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].ports[0]: needs the port containers connect to, e.g. "443" or "8443:443"`},
		{"forward bad port", "x-devmtls: {forwards: [{target: svc/orders, ports: [70000]}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].ports[0]: invalid port "70000": remote port 70000 is outside 1-65535`},
		{"forward bad protocol", "x-devmtls: {forwards: [{target: svc/db, ports: [5432], protocol: mysql}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].protocol: must be tcp or postgres, got "mysql"`},
		{"forward unknown key", "x-devmtls: {forwards: [{target: svc/db, ports: [5432], alias: db}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].alias: unknown key (known keys: as, context, creds, namespace, ports, protocol, secret, server_name, target)`},
		{"forward bad name", "x-devmtls: {forwards: [{target: svc/db, ports: [5432], as: DB_1}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].as: must be a host name containers can use (lower-case letters, digits and '-'), got "DB_1"`},
		{"forward twice", "x-devmtls: {forwards: [{target: svc/db, ports: [5432]}, {target: deploy/db, ports: [5433]}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[1].as: db is already the name of x-devmtls.forwards[0]; give one of them another name with as:`},
		{"forward clashes with service", "x-devmtls: {forwards: [{target: svc/api, ports: [443]}]}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.forwards[0].as: api is also a compose service, and a container could not tell them apart; reach the cluster's one by another name with as:`},
		{"system dir", "x-devmtls: {mount_path: /etc}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.mount_path: /etc would hide the container's own files (devmtls mounts a directory there); use a directory of its own such as /etc/mtls`},
		{"under /proc", "services:\n  api:\n    image: x\n    x-devmtls:\n      mount_path: /proc/self/mtls\n",
			`compose.yaml: services.api.x-devmtls.mount_path: /proc/self/mtls is under /proc, which the container runtime provides itself; use a directory of its own such as /var/mtls`},
		{"under /sys", "x-devmtls: {mount_path: /sys/kernel/tls}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.mount_path: /sys/kernel/tls is under /sys, which the container runtime provides itself; use a directory of its own such as /var/mtls`},
		{"under /dev", "services:\n  api:\n    image: x\n    x-devmtls:\n      formats: [postgres]\n      postgres: {mount_path: /dev/shm/../shm/pg}\n",
			`compose.yaml: services.api.x-devmtls.postgres.mount_path: /dev/shm/pg is under /dev, which the container runtime provides itself; use a directory of its own such as /var/mtls`},
		{"validity past the maximum", "x-devmtls: {validity: 3650d}\nservices:\n  api: {image: x}\n",
			`compose.yaml: x-devmtls.validity: invalid validity "3650d": it must be at most 825d, the longest lifetime many TLS stacks (notably Apple's) accept`},
		{"file name with slash", "services:\n  api:\n    image: x\n    x-devmtls:\n      files: {cert: tls/cert.pem}\n",
			`compose.yaml: services.api.x-devmtls.files.cert: must be a plain file name (no '/'), got "tls/cert.pem"`},
		{"bad env name", "services:\n  api:\n    image: x\n    x-devmtls:\n      env: {cert: 1CERT}\n",
			`compose.yaml: services.api.x-devmtls.env.cert: must be an environment variable name such as MTLS_CERT (or "" to set none), got "1CERT"`},
		{"clashing files", "services:\n  api:\n    image: x\n    x-devmtls:\n      files: {cert: same, key: same}\n",
			`compose.yaml: services.api.x-devmtls: files.cert and files.key would both be /var/mtls/same`},
		{"clashing env", "services:\n  api:\n    image: x\n    x-devmtls:\n      formats: [postgres]\n      env: {cert: PGSSLCERT}\n",
			`compose.yaml: services.api.x-devmtls: env.cert and the postgres format would both set PGSSLCERT`},
		{"nested mounts", "services:\n  api:\n    image: x\n    x-devmtls:\n      formats: [postgres]\n      postgres: {mount_path: /var/mtls/pg}\n",
			`compose.yaml: services.api.x-devmtls: mount_path /var/mtls and postgres.mount_path /var/mtls/pg must be separate directories (neither inside the other)`},
		{"sslmode", "services:\n  api:\n    image: x\n    x-devmtls:\n      postgres: {sslmode: disable}\n",
			`compose.yaml: services.api.x-devmtls.postgres.sslmode: must be one of require, verify-ca, verify-full (mTLS needs TLS), got "disable"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeProject(t, map[string]string{"compose.yaml": tc.yaml})
			_, err := load(t, dir, LoadOptions{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error\n got: %v\nwant: %s", err, tc.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("%T is not a *ConfigError", err)
			}
		})
	}
}

func TestLegacyFormatIsReportedAsSuch(t *testing.T) {
	dir := writeProject(t, map[string]string{"docker-compose.yml": "web:\n  image: nginx\n  ports: [\"80:80\"]\ndb:\n  build: ./db\n"})
	_, err := load(t, dir, LoadOptions{})
	var le *LegacyFormatError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "docker-compose.yml is in the legacy version 1 compose format") || strings.Contains(err.Error(), "x-devmtls: false") {
		t.Fatalf("got %v", err)
	}
	// A modern file without services is not mistaken for one.
	dir = writeProject(t, map[string]string{"compose.yaml": "services: {}\nx-common:\n  image: x\n"})
	if _, err := load(t, dir, LoadOptions{}); errors.As(err, &le) {
		t.Fatalf("a modern file was reported as legacy: %v", err)
	}
}

// The error names the file the bad field is in, also when several files,
// interpolation, or extends are involved.
func TestErrorNamesTheFile(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml":         "x-devmtls: {mode: shared}\nservices:\n  api:\n    image: x\n    x-devmtls: {user: '1:1'}\n  worker:\n    extends: {file: common/base.yaml, service: base}\n",
		"compose.dev.yaml":     "services:\n  api:\n    x-devmtls:\n      mount_path: ${TLS_DIR}\n",
		"common/base.yaml":     "services:\n  base:\n    image: x\n    x-devmtls: {formats: [jks]}\n",
		"compose.extends.yaml": "services:\n  worker:\n    image: x\n",
	})
	_, err := load(t, dir, LoadOptions{Files: []string{"compose.yaml", "compose.dev.yaml"}, Environ: []string{"TLS_DIR=relative/tls"}})
	if want := `compose.dev.yaml: services.api.x-devmtls.mount_path: must be an absolute path, got "relative/tls"`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = load(t, dir, LoadOptions{Files: []string{"compose.yaml", "compose.dev.yaml"}, Environ: []string{"TLS_DIR=/abs"}})
	if want := `common/base.yaml: services.worker.x-devmtls.formats[0]: unknown format "jks": use one of pem, haproxy, postgres, pkcs12, pkcs8-der`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// Outside the working directory, the path is absolute.
	other := t.TempDir()
	_, err = Load(context.Background(), LoadOptions{WorkingDir: other, Files: []string{filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "compose.dev.yaml")}, Environ: []string{"TLS_DIR=x"}})
	if want := filepath.Join(dir, "compose.dev.yaml") + ": services.api.x-devmtls.mount_path"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v\nwant prefix %s", err, want)
	}
}

func TestRequestFlagsWin(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": "x-devmtls: {mode: ca, names: [a.example], validity: 7d}\nservices:\n  api: {image: x}\n"})
	p := mustLoad(t, dir, LoadOptions{})
	r := Request(p, certs.Request{Mode: certs.ModeShared, ExtraNames: []string{}})
	if r.Mode != certs.ModeShared || r.ExtraNames == nil || len(r.ExtraNames) != 0 || r.Validity != 7*24*time.Hour || !slices.Equal(r.Services, []string{"api"}) {
		t.Errorf("merged %+v", r)
	}
	flags := certs.Request{KeyType: certs.KeyEd25519}
	if r := Request(nil, flags); r.KeyType != certs.KeyEd25519 || r.Services != nil {
		t.Errorf("outside a project the flags are the request: %+v", r)
	}
}
