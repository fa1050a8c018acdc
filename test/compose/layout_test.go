package composetest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/testenv"
	"go.yaml.in/yaml/v4"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// buildScratchImage packs a host binary and exactly the libraries ldd lists
// into a FROM scratch image (no image can be pulled here).
func buildScratchImage(t *testing.T, tag, binary string, dockerfileTail string) error {
	t.Helper()
	ctxDir := t.TempDir()
	rootfs := filepath.Join(ctxDir, "rootfs")
	copyFile := func(src string) error {
		dst := filepath.Join(rootfs, src)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		data, err := os.ReadFile(src) // follows symlinks, like cp -L
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o755)
	}
	if err := copyFile(binary); err != nil {
		return err
	}
	out, err := exec.Command("ldd", binary).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %v", binary, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			err = copyFile(f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			err = copyFile(f[0])
		}
		if err != nil {
			return err
		}
	}
	df := "FROM scratch\nCOPY rootfs/ /\n" + dockerfileTail
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	if out, err := docker(t, "build", "--quiet", "--tag", tag, ctxDir); err != nil {
		return fmt.Errorf("docker build %s: %v\n%s", tag, err, out)
	}
	e2e.imagesMu.Lock()
	e2e.extraImages = append(e2e.extraImages, tag)
	e2e.imagesMu.Unlock()
	return nil
}

// hostPostgres is a real PostgreSQL on the host that accepts only TLS
// connections authenticated by a client certificate from the environment
// (pg_hba "hostssl … cert"), listening on the Docker bridge address that
// host.docker.internal (host-gateway) resolves to in containers.
type hostPostgres struct {
	addr string
	port int
	sock string
}

func startHostPostgres(t *testing.T, envDir string) *hostPostgres {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		testenv.Missing(t, "PostgreSQL 15", "apt-get install postgresql-15")
	}
	setpriv := testenv.LookPath(t, "setpriv", "apt-get install util-linux")
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		testenv.Missing(t, "the postgres system user", "apt-get install postgresql-15")
	}
	if os.Getuid() != 0 {
		testenv.Missing(t, "root (to run PostgreSQL as the postgres user)", "run the end-to-end tests as root, as CI does")
	}
	iface, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("no docker0 bridge to listen on: %v", err)
	}
	addrs, _ := iface.Addrs()
	var bridgeIP string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			bridgeIP = ipn.IP.String()
		}
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	dir, err := os.MkdirTemp("", "devmtls-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The server presents the environment's host identity (its names include
	// host.docker.internal) and trusts the environment's anchor.
	for name, mode := range map[string]os.FileMode{"cert": 0o644, "key": 0o600, "ca": 0o644} {
		data, err := os.ReadFile(filepath.Join(envDir, name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "server-"+name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	asPostgres := func(name string, args ...string) *exec.Cmd {
		return exec.Command(setpriv, append([]string{"--reuid=" + pgUser.Uid, "--regid=" + pgUser.Gid, "--clear-groups", filepath.Join(pgBin, name)}, args...)...)
	}
	data := filepath.Join(dir, "data")
	if out, err := asPostgres("initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=reject", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba := "local all all trust\nhostssl all all 0.0.0.0/0 cert\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chown(filepath.Join(data, "pg_hba.conf"), uid, gid)
	port := freePorts(t, 1)[0]
	srv := asPostgres("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses="+bridgeIP,
		"-c", "ssl=on", "-c", "ssl_cert_file="+filepath.Join(dir, "server-cert"), "-c", "ssl_key_file="+filepath.Join(dir, "server-key"),
		"-c", "ssl_ca_file="+filepath.Join(dir, "server-ca"), "-c", "ssl_min_protocol_version=TLSv1.2", "-c", "fsync=off")
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt) // fast shutdown
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("postgres log:\n%s", logs.String())
		}
	})
	pg := &hostPostgres{addr: bridgeIP, port: port, sock: dir}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := asPostgres("psql", "-X", "-h", dir, "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres", "-c", "CREATE ROLE pgclient LOGIN").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL did not start: %v\n%s\n%s", err, out, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return pg
}

// TestTwoFilesProfilesOptOutAndPostgresLayout: a project split over two -f
// files with profiles, a service that opts out, and a service with a custom
// mount path and the postgres layout whose key belongs to its non-root user —
// proved by a real libpq (psql in a container) authenticating to a real
// PostgreSQL with its certificate, sslmode=verify-full.
func TestTwoFilesProfilesOptOutAndPostgresLayout(t *testing.T) {
	t.Parallel()
	testenv.ForEachCompose(t, testTwoFilesProfilesOptOutAndPostgresLayout)
}

func testTwoFilesProfilesOptOutAndPostgresLayout(t *testing.T, line testenv.ComposeLine) {
	shopImage, _ := exampleImages(t)
	psqlImage := psqlImage(t)

	dir := writeFiles(t, map[string]string{
		"compose.yaml": `
x-devmtls:
  mode: ca
services:
  api:
    image: ${SHOP_IMAGE}
    command: ["docs"]
    user: "10001:10001"
  debug:
    image: ${SHOP_IMAGE}
    command: ["docs"]
    profiles: [debug]
  plain:
    image: ${SHOP_IMAGE}
    command: ["docs"]
    x-devmtls: false
`,
		"compose.pg.yaml": `
services:
  pgclient:
    image: ${PSQL_IMAGE}
    profiles: [tools]
    user: "70:70"
    environment:
      PGUSER: pgclient
      PGDATABASE: postgres
      PGHOST: host.docker.internal
      PGPORT: "${PG_PORT}"
      PGGSSENCMODE: disable
    x-devmtls:
      mount_path: /etc/pgclient/tls
      formats: [postgres]
`,
	})
	p := newE2EProject(t, dir, line, "SHOP_IMAGE="+shopImage, "PSQL_IMAGE="+psqlImage, "PG_PORT=0")
	files := []string{"-f", "compose.yaml", "-f", "compose.pg.yaml"}

	p.must(append(append([]string{"up", "-d"}, files...), "--profile", "debug")...)
	st := p.status(append(files, "--profile", "debug")...)
	for _, name := range []string{"api", "debug"} {
		svc := st.service(name)
		if svc == nil || len(svc.Containers) != 1 || svc.Containers[0].Credentials != compose.CredsCurrent {
			t.Errorf("%s: %+v", name, svc)
		}
	}
	if plain := st.service("plain"); plain == nil || len(plain.Containers) != 1 || plain.Containers[0].Credentials != compose.CredsOptedOut || len(plain.Containers[0].Mounts) != 0 {
		t.Errorf("plain: %+v", plain)
	}
	if pgc := st.service("pgclient"); pgc == nil || pgc.Active || len(pgc.Containers) != 0 || len(pgc.Mounts) != 2 {
		t.Errorf("pgclient (profile tools, not enabled): %+v", pgc)
	}
	plainID := st.service("plain").Containers[0].ID
	if out, err := docker(t, "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}{{range .Mounts}}{{.Destination}}{{end}}", plainID); err != nil || strings.Contains(out, "MTLS_") || strings.Contains(out, "/var/mtls") {
		t.Errorf("plain has credentials: %v\n%s", err, out)
	}
	// ca mode: every service, active or not, has its own leaf.
	for _, name := range []string{"api", "debug", "pgclient"} {
		if _, err := os.Stat(filepath.Join(dir, ".devmtls", "services", name, "cert")); err != nil {
			t.Errorf("no leaf for %s: %v", name, err)
		}
	}

	// The compose config devmtls passes shows the custom layout. The lines
	// print it differently (v1 writes extra_hosts as a map, v2 as a list),
	// so it is compared parsed.
	cfg := parseComposeConfig(t, p.must(append(append([]string{"compose"}, files...), "--profile", "tools", "config")...))
	pgc := cfg.Services["pgclient"]
	wantEnv := map[string]string{"MTLS_CERT": "/etc/pgclient/tls/cert", "PGSSLCERT": "/var/postgres-mtls/cert", "PGSSLKEY": "/var/postgres-mtls/key",
		"PGSSLROOTCERT": "/var/postgres-mtls/cacert", "PGSSLMODE": "verify-full"}
	for k, v := range wantEnv {
		if pgc.Environment[k] != v {
			t.Errorf("compose config: pgclient's %s is %q, want %q", k, pgc.Environment[k], v)
		}
	}
	for _, target := range []string{"/etc/pgclient/tls", "/var/postgres-mtls"} {
		if !slices.ContainsFunc(pgc.Volumes, func(v composeVolume) bool { return v.Target == target && v.Type == "bind" && v.ReadOnly }) {
			t.Errorf("compose config: pgclient has no read-only bind at %s: %+v", target, pgc.Volumes)
		}
	}
	if hosts := pgc.extraHosts(t); hosts["host.docker.internal"] != "host-gateway" {
		t.Errorf("compose config: pgclient's extra_hosts %v lack host.docker.internal:host-gateway", hosts)
	}

	t.Run("libpq in the container authenticates with its certificate", func(t *testing.T) {
		pg := startHostPostgres(t, filepath.Join(dir, ".devmtls"))
		p.env = append(p.env, fmt.Sprintf("PG_PORT=%d", pg.port))
		run := append(append([]string{"compose"}, files...), "--profile", "tools", "run", "--rm", "-T", "pgclient")
		out := p.must(append(run, "-A", "-t", "-c", "SELECT current_user, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")...)
		// client_dn is cut at 64 characters by PostgreSQL.
		if got := strings.TrimSpace(out); !strings.HasPrefix(got, "pgclient|t|/O=devmtls") || !strings.Contains(got, "/CN=pgc") {
			t.Errorf("psql over mTLS: %q, want pgclient|t|<its certificate's DN>", got)
		}
		// stdin reaches the container, and compose's (here psql's) exit
		// code is devmtls's: 3 is psql's "script failed".
		_, stderr, code := p.devmtlsWithInput("SELECT 1/0;\n", append(run, "-v", "ON_ERROR_STOP=1")...)
		if code != 3 || !strings.Contains(stderr, "division by zero") {
			t.Errorf("exit %d (want psql's 3), stderr %q", code, stderr)
		}
	})

	p.must(append(append([]string{"down"}, files...), "--profile", "debug", "--profile", "tools")...)
	if left := p.leftovers(); left != "" {
		t.Errorf("left behind: %s", left)
	}
}

// psqlImage builds, once per run, a FROM scratch image of Debian's psql.
func psqlImage(t *testing.T) string {
	t.Helper()
	e2e.psqlOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(pgBin, "psql")); err != nil {
			e2e.psqlErr = err
			return
		}
		tag := "devmtls-e2e/psql:" + e2e.runID
		e2e.psqlErr = buildScratchImage(t, tag, filepath.Join(pgBin, "psql"), "ENTRYPOINT [\""+filepath.Join(pgBin, "psql")+"\", \"-X\"]\n")
		e2e.psqlImage = tag
	})
	if errors.Is(e2e.psqlErr, fs.ErrNotExist) {
		testenv.Missing(t, "psql", "apt-get install postgresql-client-15")
	}
	if e2e.psqlErr != nil {
		t.Fatal(e2e.psqlErr)
	}
	return e2e.psqlImage
}

// composeConfig is what the tests read of `compose config`.
type composeConfig struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Environment map[string]string `yaml:"environment"`
	ExtraHosts  yaml.Node         `yaml:"extra_hosts"`
	Volumes     []composeVolume   `yaml:"volumes"`
}

type composeVolume struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

func parseComposeConfig(t *testing.T, out string) composeConfig {
	t.Helper()
	var cfg composeConfig
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("compose config printed YAML it cannot read back: %v\n%s", err, out)
	}
	return cfg
}

// extraHosts reads extra_hosts in each line's form: a map (v1), or a list of
// "host=address" (v2) or "host:address" entries.
func (s composeService) extraHosts(t *testing.T) map[string]string {
	t.Helper()
	hosts := map[string]string{}
	switch s.ExtraHosts.Kind {
	case 0:
	case yaml.MappingNode:
		if err := s.ExtraHosts.Decode(&hosts); err != nil {
			t.Fatal(err)
		}
	case yaml.SequenceNode:
		var entries []string
		if err := s.ExtraHosts.Decode(&entries); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			host, addr, ok := strings.Cut(e, "=")
			if !ok {
				host, addr, _ = strings.Cut(e, ":")
			}
			hosts[host] = addr
		}
	default:
		t.Fatalf("extra_hosts is neither a map nor a list: %v", s.ExtraHosts.Kind)
	}
	return hosts
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
