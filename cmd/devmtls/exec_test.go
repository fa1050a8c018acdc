package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/testcreds"
	"github.com/devmtls/devmtls/internal/testenv"
)

// mtlsServer starts a Go HTTPS server that requires and verifies a client
// certificate from the environment (crypto/tls, RequireAndVerifyClientCert,
// the environment's pool) and answers with the client's common name.
func mtlsServer(t *testing.T, c *certs.Credentials) (port string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = c.ServerConfig(c.Top)
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

const pythonClient = `
import os, ssl, sys, http.client
ctx = ssl.create_default_context(cafile=os.environ["MTLS_CA"])
ctx.load_cert_chain(os.environ["MTLS_CERT"], os.environ["MTLS_KEY"])
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx)
c.request("GET", "/")
print(c.getresponse().read().decode())
`

// pythonTrustClient trusts whatever SSL_CERT_FILE names: the system roots
// normally, the dev CA with --runtime-trust.
const pythonTrustClient = `
import os, ssl, sys, http.client
ctx = ssl.create_default_context()
ctx.load_cert_chain(os.environ["MTLS_CERT"], os.environ["MTLS_KEY"])
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx)
c.request("GET", "/")
print(c.getresponse().read().decode())
`

const nodeClient = `
const https = require("https"), fs = require("fs"), e = process.env;
const opts = {host: "localhost", port: Number(process.argv[1]), path: "/", cert: fs.readFileSync(e.MTLS_CERT), key: fs.readFileSync(e.MTLS_KEY)};
if (process.argv[2] !== "no-ca") opts.ca = fs.readFileSync(e.MTLS_CA);
https.get(opts, (res) => { let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => console.log(b)); })
  .on("error", (err) => { console.error(err.message); process.exit(1); });
`

// TestExecRuntimesCompleteMTLS runs real clients through `devmtls exec`, each
// completing an mTLS call to a Go server that requires the environment's
// client certificate.
func TestExecRuntimesCompleteMTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env dir", ".devmtls")
	port := mtlsServer(t, testcreds.Ensure(t, dir, certs.Request{}))
	for _, c := range []struct {
		name, tool string
		args       []string
	}{
		{"python3 ssl", "python3", []string{"exec", "--", "python3", "-c", pythonClient, port}},
		{"python3 SSL_CERT_FILE (--runtime-trust)", "python3", []string{"exec", "--runtime-trust", "--", "python3", "-c", pythonTrustClient, port}},
		{"node https", "node", []string{"exec", "--", "node", "-e", nodeClient, port}},
		{"node NODE_EXTRA_CA_CERTS (--runtime-trust)", "node", []string{"exec", "--runtime-trust", "--", "node", "-e", nodeClient, port, "no-ca"}},
		{"curl", "curl", []string{"exec", "--", "sh", "-c", `exec curl -sS --fail --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://localhost:$1/"`, "sh", port}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testenv.LookPath(t, c.tool, "apt-get install "+map[string]string{"python3": "python3", "node": "nodejs", "curl": "curl"}[c.tool])
			stdout, stderr, code := runBin(t, nil, append([]string{"--dir", dir}, c.args...)...)
			if code != 0 || strings.TrimSpace(stdout) != "hello devmtls" {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
		})
	}

	// Controls: the same clients fail without the variables devmtls sets, and
	// the server refuses a client without a certificate, so the passes above
	// are the variables' doing.
	t.Run("controls", func(t *testing.T) {
		testenv.LookPath(t, "python3", "apt-get install python3")
		testenv.LookPath(t, "node", "apt-get install nodejs")
		testenv.LookPath(t, "curl", "apt-get install curl")
		if out, err := exec.Command("python3", "-c", pythonClient, port).CombinedOutput(); err == nil || !strings.Contains(string(out), "MTLS_CA") {
			t.Errorf("python3 without devmtls exec: %v\n%s", err, out)
		}
		// Without --runtime-trust, Node.js does not trust the dev CA.
		if _, stderr, code := runBin(t, nil, "--dir", dir, "exec", "--", "node", "-e", nodeClient, port, "no-ca"); code == 0 || !strings.Contains(stderr, "certificate") {
			t.Errorf("node without the CA: exit %d, %s", code, stderr)
		}
		if _, stderr, code := runBin(t, nil, "--dir", dir, "exec", "--", "sh", "-c", `exec curl -sS --fail --cacert "$MTLS_CA" "https://localhost:$1/"`, "sh", port); code == 0 {
			t.Errorf("curl without a client certificate was served: %s", stderr)
		}
	})
}

// TestExecServiceIdentityInCAMode: --service picks that service's own leaf.
func TestExecServiceIdentityInCAMode(t *testing.T) {
	testenv.LookPath(t, "python3", "apt-get install python3")
	dir := filepath.Join(t.TempDir(), ".devmtls")
	port := mtlsServer(t, testcreds.Ensure(t, dir, certs.Request{Mode: certs.ModeCA, Services: []string{"orders", "billing"}}))
	for service, want := range map[string]string{"orders": "hello orders", "": "hello devmtls"} {
		args := []string{"--dir", dir, "exec"}
		if service != "" {
			args = append(args, "--service", service)
		}
		stdout, stderr, code := runBin(t, nil, append(args, "--", "python3", "-c", pythonClient, port)...)
		if code != 0 || strings.TrimSpace(stdout) != want {
			t.Errorf("--service %q: exit %d, stdout %q, stderr %s", service, code, stdout, stderr)
		}
	}
	_, stderr, code := runBin(t, nil, "--dir", dir, "exec", "--service", "nosuch", "--", "true")
	if code != exitUsage || !strings.Contains(stderr, `no credentials for service "nosuch"`) {
		t.Errorf("unknown service: exit %d, %s", code, stderr)
	}
}

// TestExecNeedsNoDockerOrCompose creates the credentials on first use in a
// directory with no compose file and no reachable Docker.
func TestExecNeedsNoDockerOrCompose(t *testing.T) {
	work := t.TempDir()
	cmd := exec.Command(devmtlsBin, "exec", "--", "sh", "-c", `cat "$MTLS_KEY" >/dev/null && printf %s "$MTLS_CERT"`)
	cmd.Dir = work
	cmd.Env = []string{"PATH=/usr/bin:/bin", "DOCKER_HOST=unix:///nonexistent.sock", "HOME=" + work}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v", err)
	}
	if want := filepath.Join(work, ".devmtls", "cert"); string(out) != want {
		t.Errorf("MTLS_CERT = %q, want %q", out, want)
	}
	fi, err := os.Stat(filepath.Join(work, ".devmtls", "key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key: %v, %v", fi, err)
	}
}

func TestExecExitCodes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devmtls")
	work := t.TempDir()
	notExec := filepath.Join(work, "not-executable")
	noShebang := filepath.Join(work, "no-shebang")
	badInterp := filepath.Join(work, "bad-interpreter")
	for path, content := range map[string]string{notExec: "#!/bin/sh\n", noShebang: "echo from sh \"$1\"\n", badInterp: "#!/nonexistent/sh\n"} {
		perm := os.FileMode(0o755)
		if path == notExec {
			perm = 0o644
		}
		if err := os.WriteFile(path, []byte(content), perm); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		argv   []string
		code   int
		stdout string
		stderr string
	}{
		{"success", []string{"true"}, 0, "", ""},
		{"exit code", []string{"sh", "-c", "exit 7"}, 7, "", ""},
		{"killed by a signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + int(syscall.SIGTERM), "", ""},
		{"not found", []string{"no-such-command-devmtls"}, 127, "", "devmtls: no-such-command-devmtls: command not found in $PATH\n"},
		{"no such file", []string{"./nope"}, 127, "", "devmtls: ./nope: no such file\n"},
		{"not executable", []string{notExec}, 126, "", "permission denied"},
		{"directory", []string{work}, 126, "", "is a directory"},
		{"missing interpreter", []string{badInterp}, 127, "", "interpreter is missing"},
		{"script without #!", []string{noShebang, "arg"}, 0, "from sh arg\n", ""},
		{"arguments pass through", []string{"sh", "-c", `printf '%s|' "$@"`, "sh", "a b", "--service", "-x"}, 0, "a b|--service|-x|", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(devmtlsBin, append([]string{"--dir", dir, "exec", "--"}, c.argv...)...)
			cmd.Dir = work
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, c.code, errb.String())
			}
			if out.String() != c.stdout {
				t.Errorf("stdout %q, want %q", out.String(), c.stdout)
			}
			if got := strings.ReplaceAll(errb.String(), "devmtls: created dev credentials in "+dir+"\n", ""); c.stderr == "" && got != "" || !strings.Contains(got, c.stderr) {
				t.Errorf("stderr %q, want %q", got, c.stderr)
			}
		})
	}
	// Without "--" the command and its flags are still the command's.
	stdout, _, code := runBin(t, nil, "--dir", dir, "exec", "sh", "-c", "echo $0", "--help")
	if code != 0 || stdout != "--help\n" {
		t.Errorf("exec without --: exit %d, %q", code, stdout)
	}
	if _, stderr, code := runBin(t, nil, "--dir", dir, "exec"); code != exitUsage || !strings.Contains(stderr, "no command given") {
		t.Errorf("exec with no command: exit %d, %q", code, stderr)
	}
}
