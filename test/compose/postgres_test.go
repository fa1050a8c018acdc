//go:build linux

// PostgreSQL here is Debian's (/usr/lib/postgresql/15), run as its system user.

package composetest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/testcreds"
	"github.com/devmtls/devmtls/internal/testenv"
)

const pgBinDir = "/usr/lib/postgresql/15/bin"

// pgServer is a throwaway PostgreSQL 15 that accepts only TLS connections
// authenticated by a client certificate issued by (or pinned to) the
// environment: ssl=on, pg_hba "hostssl … cert".
type pgServer struct {
	port string
}

// startPostgres runs PostgreSQL as the postgres system user when the tests run
// as root (PostgreSQL refuses to run as root), else as the current user.
func startPostgres(t *testing.T, c *certs.Credentials) *pgServer {
	t.Helper()
	for _, b := range []string{"initdb", "postgres", "pg_isready"} {
		if _, err := os.Stat(filepath.Join(pgBinDir, b)); err != nil {
			testenv.Missing(t, filepath.Join(pgBinDir, b), "apt-get install postgresql-15")
		}
	}
	var cred *syscall.Credential
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "the postgres system user", "apt-get install postgresql-15 (it creates the user)")
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// t.TempDir's parents are 0700 root-owned; PostgreSQL's user needs a
	// directory of its own it can reach.
	base, err := os.MkdirTemp("", "devmtls-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	data := filepath.Join(base, "data")
	write := func(name string, content []byte, perm os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.WriteFile(p, content, perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.Chown(base, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	asPG := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(pgBinDir, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = base
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + base}
		return cmd
	}
	// The superuser is named after the client certificate's CN ("devmtls"),
	// which cert authentication maps to the database user.
	if out, err := asPG("initdb", "-D", data, "-U", c.CommonName, "--auth-local=trust", "--auth-host=reject", "--no-locale", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	write("data/pg_hba.conf", []byte("hostssl all all 127.0.0.1/32 cert\nhostssl all all ::1/128 cert\n"), 0o600)
	serverCert := write("server.crt", c.Top.CertPEM, 0o644)
	serverKey := write("server.key", c.Top.KeyPEM, 0o600) // PostgreSQL refuses a group- or world-readable key
	caFile := write("ca.crt", c.CAPEM, 0o644)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	var logs bytes.Buffer
	srv := asPG("postgres", "-D", data, "-c", "listen_addresses=127.0.0.1", "-c", "port="+port, "-c", "unix_socket_directories="+base,
		"-c", "ssl=on", "-c", "ssl_cert_file="+serverCert, "-c", "ssl_key_file="+serverKey, "-c", "ssl_ca_file="+caFile,
		"-c", "ssl_min_protocol_version=TLSv1.2", "-c", "fsync=off")
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	})
	// Ready when pg_isready says so; bounded, and a server that exits early
	// fails at once with its log.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if exec.CommandContext(ctx, filepath.Join(pgBinDir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", port).Run() == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("postgres exited: %v\n%s", err, logs.String())
		case <-ctx.Done():
			t.Fatalf("postgres not ready after 60s:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return &pgServer{port: port}
}

// TestExecPsqlVerifyFull connects psql, run through `devmtls exec --postgres`,
// to a real PostgreSQL 15 that authenticates clients by certificate, with
// sslmode=verify-full coming from the environment.
func TestExecPsqlVerifyFull(t *testing.T) {
	testenv.LookPath(t, "psql", "apt-get install postgresql-client-15")
	dir := filepath.Join(t.TempDir(), "Jane Doe", ".devmtls")
	pg := startPostgres(t, testcreds.Ensure(t, dir, certs.Request{}))
	conninfo := "host=localhost port=" + pg.port + " dbname=postgres user=devmtls"
	// cert authentication maps the certificate's CN to the user, so
	// current_user proves the client certificate was presented and verified.
	query := "select ssl, version, current_user from pg_stat_ssl where pid = pg_backend_pid()"

	stdout, stderr, code := runBin(t, []string{"PGCONNECT_TIMEOUT=20"}, "--dir", dir, "exec", "--postgres", "--", "psql", "-X", "-At", conninfo, "-c", query)
	if code != 0 || strings.TrimSpace(stdout) != "t|TLSv1.3|devmtls" {
		t.Fatalf("psql through devmtls exec: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	// The mode really is verify-full: asking for a name the server
	// certificate does not carry fails.
	_, stderr, code = runBin(t, []string{"PGCONNECT_TIMEOUT=20", "PGHOSTADDR=127.0.0.1"}, "--dir", dir, "exec", "--postgres", "--",
		"psql", "-X", "-At", "host=not-in-the-cert.example port="+pg.port+" dbname=postgres user=devmtls", "-c", "select 1")
	if code == 0 || !strings.Contains(stderr, "does not match host name") {
		t.Errorf("verify-full against a wrong host name: exit %d, %s", code, stderr)
	}
	// Control: without --postgres psql has no client certificate and the
	// server turns it away.
	_, stderr, code = runBin(t, []string{"PGCONNECT_TIMEOUT=20", "PGSSLMODE=require"}, "--dir", dir, "exec", "--", "psql", "-X", "-At", conninfo, "-c", "select 1")
	if code == 0 || !strings.Contains(stderr, "certificate") {
		t.Errorf("psql without the libpq variables: exit %d, %s", code, stderr)
	}
}
