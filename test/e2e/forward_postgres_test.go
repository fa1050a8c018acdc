package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
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

	"github.com/devmtls/devmtls/internal/testenv"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// deployPostgres runs a real PostgreSQL 15 as a pod process with ssl=on and
// only `hostssl … cert` authentication; its server keypair is the cluster's
// pinned keypair from Secret mtls, which is also the CA it trusts. The
// superuser is "tester", the cluster certificate's CN, as cert auth requires.
func (s *shop) deployPostgres(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		testenv.Missing(t, "PostgreSQL 15 server", "apt-get install postgresql-15")
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		testenv.Missing(t, "the postgres system user", "apt-get install postgresql-15")
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	data := filepath.Join(workDir, "pg-"+s.ns)
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(data, uid, gid)
	t.Cleanup(func() { os.RemoveAll(data) })
	initdb := exec.Command(filepath.Join(pgBin, "initdb"), "-D", data, "-U", "tester", "--auth=reject", "-E", "UTF8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	initdb.Dir = data
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte("hostssl all all 0.0.0.0/0 cert\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(data, "pg_hba.conf"), uid, gid)
	script := `umask 077
printf '%s' "$MTLS_CERT" > "$PGDATA/server.crt"
printf '%s' "$MTLS_KEY" > "$PGDATA/server.key"
exec ` + pgBin + `/postgres -D "$PGDATA" -c listen_addresses="$POD_IP" -c port=5432 \
  -c unix_socket_directories="$PGDATA" -c ssl=on -c ssl_cert_file=server.crt \
  -c ssl_key_file=server.key -c ssl_ca_file=server.crt -c log_connections=on`
	s.c.apply(t, s.ns, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: db}
spec:
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 5
      securityContext: {runAsUser: %d, runAsGroup: %d}
      containers:
      - name: postgres
        image: postgres:15  # ignored by the test kubelet
        command: ["/bin/sh", "-c", %q]
        ports: [{name: postgres, containerPort: 5432}]
        env:
        - {name: PGDATA, value: %q}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: MTLS_CERT, valueFrom: {secretKeyRef: {name: mtls, key: cert}}}
        - {name: MTLS_KEY, valueFrom: {secretKeyRef: {name: mtls, key: key}}}
        readinessProbe: {tcpSocket: {port: 5432}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{name: postgres, port: 5432, targetPort: postgres}]
`, uid, gid, script, data))
	s.c.kubectl(t, "-n", s.ns, "rollout", "status", "deploy/db", "--timeout=3m")
}

func psql(t testing.TB, conninfo, query string) (string, error) {
	t.Helper()
	cmd := exec.Command("psql", conninfo, "-XAtc", query)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=60")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestForwardPostgres: psql with sslmode=verify-full and the dev credentials,
// through devmtls forward --protocol postgres, to a PostgreSQL that accepts
// only the cluster's certificate.
func TestForwardPostgres(t *testing.T) {
	testenv.LookPath(t, "psql", "apt-get install postgresql-client-15")
	s := newShop(t, false)
	s.deployPostgres(t)
	f := s.forward(t, 2, "--protocol", "postgres", "svc/db", ":5432")
	_, port, _ := net.SplitHostPort(f.ipv4(t, 0))
	p := s.dev.Top.Paths
	conninfo := fmt.Sprintf("host=localhost port=%s dbname=postgres user=tester sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s", port, p.CA, p.Cert, p.Key)

	for i := range 3 {
		// Each psql run ends with PostgreSQL's own TLS close; the forward must
		// survive it and serve the next one.
		out, err := psql(t, conninfo, fmt.Sprintf("select %d * 14, current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()", i+1))
		want := fmt.Sprintf("%d|tester|t", (i+1)*14)
		if err != nil || out != want {
			t.Fatalf("psql run %d: %q, %v (want %q)\n%s", i, out, err, want, f.stderr)
		}
	}
	if _, err := psql(t, conninfo, "create table orders (id int primary key, item text); insert into orders values (1, 'tea')"); err != nil {
		t.Fatal(err)
	}
	out, err := psql(t, conninfo, "select item from orders")
	if err != nil || out != "tea" {
		t.Fatalf("psql queries: %q %v", out, err)
	}

	// Without the dev certificate the local side refuses the client.
	noCert := fmt.Sprintf("host=localhost port=%s dbname=postgres user=tester sslmode=verify-full sslrootcert=%s sslcert=/nonexistent sslkey=/nonexistent", port, p.CA)
	if out, err := psql(t, noCert, "select 1"); err == nil {
		t.Fatalf("psql without a client certificate got through: %s", out)
	}
	// Without TLS the forward answers with a PostgreSQL error saying what to do.
	out, err = psql(t, fmt.Sprintf("host=localhost port=%s dbname=postgres user=tester sslmode=disable", port), "select 1")
	if err == nil || !strings.Contains(out, "sslmode=verify-full") {
		t.Fatalf("psql with sslmode=disable: %q %v", out, err)
	}

	// CVE-2021-23222: a query pipelined in plain text right after SSLRequest
	// must never reach the server.
	conn, err := net.Dial("tcp", f.ipv4(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ssl := make([]byte, 8)
	binary.BigEndian.PutUint32(ssl[0:4], 8)
	binary.BigEndian.PutUint32(ssl[4:8], 80877103)
	query := append([]byte{'Q', 0, 0, 0, 32}, "DROP TABLE orders; SELECT 1;\x00"...)
	conn.Write(append(ssl, query...))
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	rest, _ := io.ReadAll(conn)
	if len(rest) > 1 {
		t.Fatalf("the forward answered %q to a query sent before the TLS handshake", rest)
	}
	if out, err := psql(t, conninfo, "select count(*) from orders"); err != nil || out != "1" {
		t.Fatalf("the table must still be there: %q %v", out, err)
	}
	if !strings.Contains(f.stderr.String(), "received unencrypted data after the SSL request") {
		t.Errorf("the refusal was not reported:\n%s", f.stderr)
	}
}

// TestForwardPostgresLocalPlain: a client without TLS (sslmode=disable) on
// loopback gets TLS to the server from the forward.
func TestForwardPostgresLocalPlain(t *testing.T) {
	testenv.LookPath(t, "psql", "apt-get install postgresql-client-15")
	s := newShop(t, false)
	s.deployPostgres(t)
	f := s.forward(t, 2, "--protocol", "postgres", "--local", "plain", "svc/db", ":5432")
	_, port, _ := net.SplitHostPort(f.ipv4(t, 0))
	for _, mode := range []string{"disable", "prefer"} {
		out, err := psql(t, fmt.Sprintf("host=127.0.0.1 port=%s dbname=postgres user=tester sslmode=%s", port, mode),
			"select ssl from pg_stat_ssl where pid = pg_backend_pid()")
		if err != nil || out != "t" {
			t.Fatalf("sslmode=%s: %q %v (the server side must still be TLS)\n%s", mode, out, err, f.stderr)
		}
	}
}
