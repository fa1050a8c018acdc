package compose

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/testenv"
	"github.com/devmtls/devmtls/portforward/target"
	"go.yaml.in/yaml/v4"
)

const overlayProject = `
services:
  api:
    image: x
    environment:
      - KEEP=me
    volumes:
      - ./data:/data
  db:
    image: x
    user: "4242:4343"
    x-devmtls:
      mount_path: /etc/db/tls
      formats: [postgres, pkcs12]
      pkcs12: {password: "on"}
  gw:
    image: x
    extra_hosts: ["host.docker.internal:10.1.2.3"]
  docs:
    image: x
    x-devmtls: false
`

// planFor loads the project in dir and plans it with fresh credentials in
// dir/.devmtls.
func planFor(t *testing.T, dir string, opts LoadOptions) (*Project, *certs.Credentials, *Plan) {
	t.Helper()
	return planWithRelays(t, dir, opts, nil)
}

// planWithRelays is planFor with the relays of the project's forwards.
func planWithRelays(t *testing.T, dir string, opts LoadOptions, relays []Relay) (*Project, *certs.Credentials, *Plan) {
	t.Helper()
	p := mustLoad(t, dir, opts)
	res, err := (&certs.Store{Dir: filepath.Join(dir, ".devmtls")}).Ensure(context.Background(), p.CertsRequest())
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(p, res.Credentials, filepath.Join(dir, ".devmtls"), relays)
	if err != nil {
		t.Fatal(err)
	}
	return p, res.Credentials, plan
}

func hashFiles(t *testing.T, files ...string) [][32]byte {
	t.Helper()
	var out [][32]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sha256.Sum256(data))
	}
	return out
}

func TestOverlayIsDeterministicAndPlain(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": overlayProject})
	_, creds, plan := planFor(t, dir, LoadOptions{})
	again, err := NewPlan(plan.Project, creds, plan.EnvDir, plan.Relays)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plan.Overlay, again.Overlay) {
		t.Fatal("the overlay differs between two renderings of the same inputs")
	}
	var m map[string]any
	if err := yaml.Unmarshal(plan.Overlay, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m["services"] == nil {
		t.Errorf("top-level keys %v: only services: (no name:, no version:)", m)
	}
	s := string(plan.Overlay)
	for _, want := range []string{`source: "` + filepath.Join(dir, ".devmtls", "compose", "api", "mtls") + `"`, `target: "/var/mtls"`, "read_only: true",
		`type: "bind"`, `MTLS_KEYSTORE_PASSWORD: "on"`, `- "host.docker.internal:host-gateway"`} {
		if !strings.Contains(s, want) {
			t.Errorf("overlay lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "docs") {
		t.Error("an opted-out service must not be in the overlay")
	}
	if strings.Count(s, "host-gateway") != 2 {
		t.Errorf("gw maps host.docker.internal itself, so only api and db get host-gateway:\n%s", s)
	}
}

// compose-go is Compose v2's own loader: the merged project must carry the
// mounts, variables, host and label, and keep the user's own settings.
func TestOverlayAcceptedByComposeV2Loader(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": overlayProject})
	_, _, plan := planFor(t, dir, LoadOptions{})
	if _, err := plan.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	o, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml"), plan.OverlayPath()}, cli.WithWorkingDirectory(dir), cli.WithName("v2check"))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := o.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go rejects the overlay: %v", err)
	}
	api := tp.Services["api"]
	if api.Environment["KEEP"] == nil || *api.Environment["KEEP"] != "me" || api.Environment["MTLS_CERT"] == nil || *api.Environment["MTLS_CERT"] != "/var/mtls/cert" {
		t.Errorf("api environment %v", api.Environment)
	}
	var found bool
	for _, v := range api.Volumes {
		if v.Target == "/var/mtls" {
			found = true
			if v.Type != types.VolumeTypeBind || !v.ReadOnly || v.Source != filepath.Join(dir, ".devmtls", "compose", "api", "mtls") {
				t.Errorf("api credentials mount %+v", v)
			}
		}
	}
	if !found || len(api.Volumes) != 2 {
		t.Errorf("api volumes %+v: want the user's ./data and the credentials", api.Volumes)
	}
	if api.Labels[CredentialsLabel] == "" || !slices.Equal(api.ExtraHosts["host.docker.internal"], []string{"host-gateway"}) {
		t.Errorf("api labels %v extra_hosts %v", api.Labels, api.ExtraHosts)
	}
	db := tp.Services["db"]
	targets := []string{}
	for _, v := range db.Volumes {
		targets = append(targets, v.Target)
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []string{"/etc/db/tls", "/var/postgres-mtls"}) || *db.Environment["PGSSLMODE"] != "verify-full" || *db.Environment["MTLS_KEYSTORE_PASSWORD"] != "on" {
		t.Errorf("db volumes %v environment %v", targets, db.Environment)
	}
	if gw := tp.Services["gw"]; !slices.Equal(gw.ExtraHosts["host.docker.internal"], []string{"10.1.2.3"}) {
		t.Errorf("gw's own host.docker.internal must stay: %v", gw.ExtraHosts)
	}
}

// docker-compose v1.29 (Debian's) parses YAML 1.1 and validates against its
// own schema: `config` must accept the user's file plus the overlay.
func TestOverlayAcceptedByDockerComposeV1(t *testing.T) {
	bin := testenv.LookPath(t, "docker-compose", "apt-get install docker-compose (Debian's v1.29)")
	dir := writeProject(t, map[string]string{"compose.yaml": overlayProject, "data/.keep": ""})
	_, _, plan := planFor(t, dir, LoadOptions{})
	if _, err := plan.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--project-name", "v1check", "--project-directory", dir, "-f", filepath.Join(dir, "compose.yaml"), "-f", plan.OverlayPath(), "config")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config rejects the overlay: %v\n%s", err, out)
	}
	var cfg struct {
		Services map[string]struct {
			Environment map[string]any    `yaml:"environment"`
			ExtraHosts  any               `yaml:"extra_hosts"`
			Labels      map[string]string `yaml:"labels"`
			Volumes     []any             `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	db := cfg.Services["db"]
	if db.Environment["MTLS_KEYSTORE_PASSWORD"] != "on" || db.Environment["PGSSLROOTCERT"] != "/var/postgres-mtls/cacert" {
		t.Errorf("v1 read db's environment as %v (YAML 1.1 must not turn \"on\" into a boolean)", db.Environment)
	}
	var mounts []string
	for _, vol := range db.Volumes {
		v, _ := vol.(map[string]any)
		mounts = append(mounts, v["target"].(string))
		if v["read_only"] != true || v["type"] != "bind" {
			t.Errorf("v1 mount %v", v)
		}
	}
	if slices.Sort(mounts); !slices.Equal(mounts, []string{"/etc/db/tls", "/var/postgres-mtls"}) {
		t.Errorf("v1 db mounts %v", mounts)
	}
	if cfg.Services["api"].Labels[CredentialsLabel] == "" {
		t.Errorf("v1 api labels %v", cfg.Services["api"].Labels)
	}
}

func TestWriteTouchesOnlyWhatChanged(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": overlayProject})
	userFiles := hashFiles(t, filepath.Join(dir, "compose.yaml"))
	_, _, plan := planFor(t, dir, LoadOptions{})
	ctx := context.Background()
	res, err := plan.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OverlayChanged || !slices.Equal(res.Updated, []string{"api", "db", "gw"}) {
		t.Fatalf("first write: %+v", res)
	}
	key := filepath.Join(dir, ".devmtls", "compose", "db", "mtls", "key")
	before, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	overlayBefore, _ := os.Stat(plan.OverlayPath())

	// Same inputs (a new plan, as the next devmtls up makes): nothing written.
	_, _, plan2 := planFor(t, dir, LoadOptions{})
	res, err = plan2.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.OverlayChanged || len(res.Updated) != 0 {
		t.Errorf("second write changed %+v", res)
	}
	after, _ := os.Stat(key)
	overlayAfter, _ := os.Stat(plan.OverlayPath())
	if !os.SameFile(before, after) || !overlayAfter.ModTime().Equal(overlayBefore.ModTime()) || !os.SameFile(overlayBefore, overlayAfter) {
		t.Error("an unchanged key or overlay was rewritten")
	}
	if !slices.Equal(userFiles, hashFiles(t, filepath.Join(dir, "compose.yaml"))) {
		t.Error("the user's compose file changed")
	}
}

func TestCopiesOwnersModesAndLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		// test/compose's TestNotRoot (preflight_test.go) covers what devmtls does
		// without root.
		testenv.Missing(t, "root", "run the tests as root, as CI does: only root can give the copies to another uid")
	}
	dir := writeProject(t, map[string]string{"compose.yaml": overlayProject})
	_, creds, plan := planFor(t, dir, LoadOptions{})
	if _, err := plan.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, ".devmtls", "compose")
	dbID, _ := creds.Service("db")
	for _, f := range []struct {
		path string
		mode os.FileMode
		uid  int
		data []byte
	}{
		{"db/mtls", 0o700 | os.ModeDir, 4242, nil},
		{"db/mtls/key", 0o600, 4242, dbID.KeyPEM},
		{"db/mtls/cert", 0o644, 4242, dbID.CertPEM},
		{"db/mtls/ca", 0o644, 4242, creds.CAPEM},
		{"db/mtls/key+cert", 0o600, 4242, append(slices.Clone(dbID.KeyPEM), dbID.CertPEM...)},
		{"db/mtls/keystore.p12", 0o600, 4242, nil},
		{"db/mtls/truststore.p12", 0o644, 4242, nil},
		{"db/postgres", 0o700 | os.ModeDir, 4242, nil},
		{"db/postgres/key", 0o600, 4242, dbID.KeyPEM},
		{"db/postgres/cert", 0o644, 4242, dbID.CertPEM},
		{"db/postgres/cacert", 0o644, 4242, creds.CAPEM},
		{"api/mtls/key", 0o600, 0, nil},
	} {
		// Files are links through ..data to the current generation.
		if !f.mode.IsDir() {
			if target, err := os.Readlink(filepath.Join(base, f.path)); err != nil || target != "..data/"+filepath.Base(f.path) {
				t.Errorf("%s -> %q, %v; want the link ..data/%s", f.path, target, err, filepath.Base(f.path))
			}
		}
		fi, err := os.Stat(filepath.Join(base, f.path))
		if err != nil {
			t.Error(err)
			continue
		}
		uid, gid, ok := fileOwner(fi)
		if !ok {
			t.Fatalf("%s: the file system reports no owner", f.path)
		}
		if fi.Mode() != f.mode || uid != f.uid || (f.uid == 4242 && gid != 4343) {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d", f.path, fi.Mode(), uid, gid, f.mode, f.uid)
		}
		if f.data != nil {
			if got, _ := os.ReadFile(filepath.Join(base, f.path)); !bytes.Equal(got, f.data) {
				t.Errorf("%s has the wrong content", f.path)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(base, "docs")); !os.IsNotExist(err) {
		t.Error("an opted-out service got copies")
	}
}

func TestRotationRewritesInPlaceAndPrunes(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": overlayProject})
	p, _, plan := planFor(t, dir, LoadOptions{})
	ctx := context.Background()
	if _, err := plan.Write(ctx); err != nil {
		t.Fatal(err)
	}
	mtlsDir := filepath.Join(dir, ".devmtls", "compose", "api", "mtls")
	dirBefore, _ := os.Stat(mtlsDir)
	oldCert, _ := os.ReadFile(filepath.Join(mtlsDir, "cert"))

	res, err := (&certs.Store{Dir: filepath.Join(dir, ".devmtls")}).Rotate(ctx, p.CertsRequest())
	if err != nil {
		t.Fatal(err)
	}
	plan2, err := NewPlan(p, res.Credentials, plan.EnvDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan2.Write(ctx); err != nil {
		t.Fatal(err)
	}
	newCert, _ := os.ReadFile(filepath.Join(mtlsDir, "cert"))
	dirAfter, _ := os.Stat(mtlsDir)
	if bytes.Equal(oldCert, newCert) || !bytes.Equal(newCert, res.Credentials.Top.CertPEM) {
		t.Error("the mounted directory does not hold the new certificate")
	}
	if !os.SameFile(dirBefore, dirAfter) {
		t.Error("the mounted directory was replaced: a running container would keep the old one")
	}
	if plan.Services[0].Digest == plan2.Services[0].Digest {
		t.Error("the credentials label did not change with the certificate")
	}

	// A renamed file replaces the old one; a service that left loses its copies.
	dir2 := filepath.Dir(plan.EnvDir)
	if err := os.WriteFile(filepath.Join(dir2, "compose.yaml"), []byte("services:\n  api:\n    image: x\n    x-devmtls: {files: {cert: tls.crt}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, plan3 := planFor(t, dir2, LoadOptions{})
	if _, err := plan3.Write(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(mtlsDir)
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			names = append(names, e.Name())
		}
	}
	if !slices.Equal(names, []string{"ca", "key", "key+cert", "tls.crt"}) {
		t.Errorf("api's directory holds %v", names)
	}
	for _, gone := range []string{"db", "gw"} {
		if _, err := os.Stat(filepath.Join(dir2, ".devmtls", "compose", gone)); !os.IsNotExist(err) {
			t.Errorf("copies of %s remain after it left the project", gone)
		}
	}
}

func TestProjectArgs(t *testing.T) {
	p := &Project{Name: "shop", Dir: "/src/shop", Files: []string{"/src/shop/compose.yaml", "/src/shop/dev.yaml"}, Profiles: []string{"debug"}, EnvFiles: []string{"/src/shop/ci.env"}}
	got := ProjectArgs(p, "/src/shop/.devmtls/compose.override.yaml")
	want := []string{"--project-name", "shop", "--project-directory", "/src/shop", "--file", "/src/shop/compose.yaml", "--file", "/src/shop/dev.yaml",
		"--file", "/src/shop/.devmtls/compose.override.yaml", "--profile", "debug", "--env-file", "/src/shop/ci.env"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestFindRuntime(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	if _, err := FindRuntime(env(map[string]string{EnvCompose: "no-such-compose-binary"})); err == nil || !strings.Contains(err.Error(), "no-such-compose-binary is not installed") {
		t.Errorf("override with a missing binary: %v", err)
	}
	r, err := FindRuntime(env(map[string]string{EnvCompose: "sh -c"}))
	if err != nil || !slices.Equal(r.Command, []string{"sh", "-c"}) {
		t.Errorf("override: %v %v", r, err)
	}
	code, err := r.Run(context.Background(), []string{"exit 7"}, Stdio{})
	if err != nil || code != 7 {
		t.Errorf("exit code %d, %v; want 7 passed through", code, err)
	}
	// A plugin in DOCKER_CONFIG/cli-plugins is preferred over docker-compose.
	// FindRuntime only looks for the files, so a docker and a
	// docker-compose that are empty scripts on PATH stand in for them, and
	// the test needs no Docker installed.
	bin, cfg := t.TempDir(), t.TempDir()
	for _, f := range []string{filepath.Join(bin, "docker"), filepath.Join(bin, "docker-compose"), filepath.Join(cfg, "cli-plugins", "docker-compose")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	r, err = FindRuntime(env(map[string]string{"DOCKER_CONFIG": cfg}))
	if err != nil || !slices.Equal(r.Command, []string{filepath.Join(bin, "docker"), "compose"}) {
		t.Errorf("with the plugin: %v %v", r, err)
	}
}

// TestForwardsReachContainersByName: each forward declared in a second
// compose file gets a relay service, on every network the services join with
// the forward's name as an alias; every service with credentials depends on
// the relays (the user's own dependencies kept), no service maps the name
// itself any more, the names go into the certificate, and both compose
// loaders accept the result.
func TestForwardsReachContainersByName(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `x-devmtls: {names: [extra.test]}
services:
  api: {image: x, depends_on: {db: {condition: service_started}}}
  db: {image: x, networks: [back]}
  worker: {image: x, networks: [back, default], depends_on: [db]}
  tool: {image: x, network_mode: host}
  docs: {image: x, x-devmtls: false}
networks:
  back: {}
`,
		"compose.hybrid.yaml": `x-devmtls:
  names: [extra.test]
  forwards:
    - {target: svc/orders, namespace: shop, ports: ["443"]}
    - {target: deploy/pg, ports: [5432], protocol: postgres, as: db-main}
# docker-compose v1 reads a file without services as the legacy format.
services:
  api: {environment: [ORDERS_URL=https://orders:443]}
`,
	})
	relays := []Relay{
		{As: "orders", Image: "devmtls-relay:0123abcd", Command: []string{"relay", "443=host.docker.internal:20001"}, HostGateway: "host-gateway"},
		{As: "db-main", Image: "devmtls-relay:0123abcd", Command: []string{"relay", "5432=host.docker.internal:20002"}, HostGateway: "192.0.2.7"},
	}
	opts := LoadOptions{Files: []string{filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "compose.hybrid.yaml")}}
	p, creds, plan := planWithRelays(t, dir, opts, relays)
	if len(p.Config.Forwards) != 2 || p.Config.Forwards[0].As != "orders" || p.Config.Forwards[0].Namespace != "shop" ||
		p.Config.Forwards[1].As != "db-main" || p.Config.Forwards[1].Target.Ports[0] != (target.PortSpec{Local: 5432, Remote: "5432"}) ||
		p.Config.Forwards[1].Protocol != target.ProtocolPostgres {
		t.Fatalf("forwards: %+v", p.Config.Forwards)
	}
	if !slices.Equal(p.Networks, []string{"back", "default"}) {
		t.Errorf("project networks %v, want back and default", p.Networks)
	}
	for _, n := range []string{"orders", "db-main", "extra.test", "api"} {
		if creds.Top.Certificate.VerifyHostname(n) != nil {
			t.Errorf("the certificate does not name %s: %v", n, creds.Names)
		}
	}
	if _, err := plan.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	files := append(slices.Clone(opts.Files), plan.OverlayPath())
	o, err := cli.NewProjectOptions(files, cli.WithWorkingDirectory(dir), cli.WithName("v2check"))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := o.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go rejects the overlay: %v", err)
	}
	relay, ok := tp.Services[RelayService("orders")]
	if !ok {
		t.Fatalf("no relay service for orders: %v", tp.ServiceNames())
	}
	for _, n := range []string{"back", "default"} {
		if cfg := relay.Networks[n]; cfg == nil || !slices.Equal(cfg.Aliases, []string{"orders"}) {
			t.Errorf("the relay on network %s: %+v", n, cfg)
		}
	}
	if relay.Image != "devmtls-relay:0123abcd" || !slices.Equal(relay.Command, types.ShellCommand{"relay", "443=host.docker.internal:20001"}) ||
		relay.User != "65534:65534" || !relay.ReadOnly || !slices.Equal(relay.CapDrop, []string{"ALL"}) ||
		relay.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "0" || !slices.Equal(relay.ExtraHosts["host.docker.internal"], []string{"host-gateway"}) {
		t.Errorf("relay service %+v", relay)
	}
	if got := tp.Services[RelayService("db-main")].ExtraHosts["host.docker.internal"]; !slices.Equal(got, []string{"192.0.2.7"}) {
		t.Errorf("the db-main relay reaches the host at %v", got)
	}
	api := tp.Services["api"]
	for _, dep := range []string{"db", RelayService("orders"), RelayService("db-main")} {
		if _, ok := api.DependsOn[dep]; !ok {
			t.Errorf("api depends on %v, lacks %s", api.DependsOn, dep)
		}
	}
	if len(api.ExtraHosts["orders"]) != 0 {
		t.Errorf("api still maps orders itself: %v", api.ExtraHosts)
	}
	if _, ok := tp.Services["docs"].DependsOn[RelayService("orders")]; ok {
		t.Errorf("an opted-out service got the relays: %v", tp.Services["docs"].DependsOn)
	}

	bin := testenv.LookPath(t, "docker-compose", "apt-get install docker-compose (Debian's v1.29)")
	args := []string{"--project-name", "v1check", "--project-directory", dir}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	out, err := exec.Command(bin, append(args, "config")...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	var v1 struct {
		Services map[string]struct {
			DependsOn map[string]any `yaml:"depends_on"`
			Networks  map[string]struct {
				Aliases []string `yaml:"aliases"`
			} `yaml:"networks"`
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &v1); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	if r := v1.Services[RelayService("orders")]; r.Image != "devmtls-relay:0123abcd" || !slices.Equal(r.Networks["back"].Aliases, []string{"orders"}) ||
		!slices.Equal(r.Networks["default"].Aliases, []string{"orders"}) {
		t.Errorf("docker-compose v1 reads the relay as %+v\n%s", r, out)
	}
	for _, dep := range []string{"db", RelayService("orders"), RelayService("db-main")} {
		if _, ok := v1.Services["api"].DependsOn[dep]; !ok {
			t.Errorf("docker-compose v1: api depends on %v, lacks %s", v1.Services["api"].DependsOn, dep)
		}
	}
}

// A compose service with the name a relay would get is refused.
func TestRelayNameTaken(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": `x-devmtls:
  forwards: [{target: svc/orders, ports: ["443"]}]
services:
  devmtls-relay-orders: {image: x}
`})
	_, err := load(t, dir, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "x-devmtls.forwards[0].as: the relay of forward orders would be the compose service devmtls-relay-orders") {
		t.Fatalf("got %v", err)
	}
}
