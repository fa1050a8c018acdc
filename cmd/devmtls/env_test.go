package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/hostenv"
	"github.com/devmtls/devmtls/internal/testenv"
)

// awkwardEnvDir is an environment directory whose path a shell could get
// wrong: spaces, both quotes, a dollar sign and a backtick.
func awkwardEnvDir(t *testing.T) string {
	return filepath.Join(t.TempDir(), `Jane's "dev" $HOME `+"`x`", ".devmtls")
}

func wantVars(dir string) map[string]string {
	return map[string]string{
		"MTLS_CERT": filepath.Join(dir, "cert"), "MTLS_KEY": filepath.Join(dir, "key"),
		"MTLS_CA": filepath.Join(dir, "ca"), "MTLS_KEY_CERT": filepath.Join(dir, "key+cert"),
	}
}

// TestEnvEvalInRealShells runs the documented one-liners in real shells
// against the built binary: eval "$(devmtls env)" in bash, zsh and sh, and
// `devmtls env --format fish | source` in fish.
func TestEnvEvalInRealShells(t *testing.T) {
	dir := awkwardEnvDir(t)
	for _, sh := range []struct{ name, format, script string }{
		{"bash", "bash", `eval "$("$DEVMTLS" --dir "$ENVDIR" env --format bash)" && exec env -0`},
		{"zsh", "zsh", `eval "$("$DEVMTLS" --dir "$ENVDIR" env --format zsh)" && exec env -0`},
		{"sh", "sh", `eval "$("$DEVMTLS" --dir "$ENVDIR" env)" && exec env -0`},
		{"fish", "fish", `$DEVMTLS --dir $ENVDIR env --format fish | source; and exec env -0`},
	} {
		t.Run(sh.name, func(t *testing.T) {
			path := testenv.LookPath(t, sh.name, "apt-get install "+sh.name)
			args := []string{"-c", sh.script}
			if sh.name == "fish" {
				args = append([]string{"--no-config"}, args...)
			}
			cmd := exec.Command(path, args...)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "DEVMTLS="+devmtlsBin, "ENVDIR="+dir)
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("%s: %v\n%s", sh.name, err, stderr)
			}
			got := map[string]string{}
			for _, kv := range strings.Split(string(out), "\x00") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					got[k] = v
				}
			}
			for name, want := range wantVars(dir) {
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
				if _, err := os.Stat(got[name]); err != nil {
					t.Errorf("%s does not point at a file: %v", name, err)
				}
			}
			if m, _ := filepath.Glob(filepath.Join(cmd.Dir, "x")); len(m) > 0 {
				t.Errorf("a backtick in the path was executed")
			}
		})
	}
}

func TestEnvJSONAndDotenvParseBack(t *testing.T) {
	dir := awkwardEnvDir(t)
	stdout, stderr, code := cli(t, "--dir", dir, "env", "--format", "json", "--postgres", "--runtime-trust")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "created dev credentials in "+dir) {
		t.Errorf("stderr = %q, want a note that credentials were created", stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	want := wantVars(dir)
	for k, v := range map[string]string{"PGSSLCERT": want["MTLS_CERT"], "PGSSLKEY": want["MTLS_KEY"], "PGSSLROOTCERT": want["MTLS_CA"], "PGSSLMODE": "verify-full",
		"NODE_EXTRA_CA_CERTS": want["MTLS_CA"], "SSL_CERT_FILE": want["MTLS_CA"], "REQUESTS_CA_BUNDLE": want["MTLS_CA"], "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": want["MTLS_CA"]} {
		want[k] = v
	}
	if len(got) != len(want) {
		t.Errorf("JSON has %d variables, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("JSON %s = %q, want %q", k, got[k], v)
		}
	}

	// The dotenv form, read back by a real dotenv reader (Node.js --env-file).
	// The path mixes both quotes with $ and a backtick, which no dotenv dialect
	// spells portably, so a plainer directory is used for it.
	plain := filepath.Join(t.TempDir(), "Jane Doe", ".devmtls")
	stdout, stderr, code = cli(t, "--dir", plain, "env", "--format", "dotenv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	file := filepath.Join(t.TempDir(), "mtls.env")
	if err := os.WriteFile(file, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.LookPath(t, "node", "apt-get install nodejs")
	out, err := exec.Command("node", "--env-file="+file, "-e", `console.log(JSON.stringify({MTLS_CERT: process.env.MTLS_CERT, MTLS_KEY: process.env.MTLS_KEY, MTLS_CA: process.env.MTLS_CA, MTLS_KEY_CERT: process.env.MTLS_KEY_CERT}))`).Output()
	if err != nil {
		t.Fatalf("node --env-file: %v", err)
	}
	got = nil
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range wantVars(plain) {
		if got[k] != v {
			t.Errorf("dotenv %s = %q, want %q", k, got[k], v)
		}
	}
	// The awkward directory is refused in dotenv with one sentence, not
	// written half-way.
	stdout, stderr, code = cli(t, "--dir", dir, "env", "--format", "dotenv")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "use --format json") {
		t.Errorf("dotenv of an unspellable path: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestEnvUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devmtls")
	for _, args := range [][]string{
		{"env", "--format", "csh"},
		{"env", "extra"},
		{"env", "--nope"},
	} {
		_, stderr, code := cli(t, append([]string{"--dir", dir}, args...)...)
		if code != exitUsage || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("a usage error created credentials")
	}
}

// TestEnvServiceUsesComposeSettings: inside a Compose project, --service takes
// that service's x-devmtls variable names and its postgres layout, and the
// credentials cover the project's services.
func TestEnvServiceUsesComposeSettings(t *testing.T) {
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "compose.yaml"), []byte(`services:
  api:
    image: scratch
    x-devmtls:
      env: {cert: API_TLS_CERT, key: API_TLS_KEY, ca: API_TLS_CA, key_cert: API_TLS_BUNDLE}
  db-client:
    image: scratch
    x-devmtls:
      formats: [postgres]
`), 0o644)
	t.Setenv("DEVMTLS_DIR", "")
	t.Setenv("COMPOSE_FILE", "")
	t.Chdir(project)
	out := mustCLI(t, "env", "--format", "json", "--service", "api")
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(project, ".devmtls")
	if got["API_TLS_CERT"] != filepath.Join(dir, "cert") || got["API_TLS_BUNDLE"] != filepath.Join(dir, "key+cert") || got["MTLS_CERT"] != "" {
		t.Fatalf("api's variables: %v", got)
	}
	out = mustCLI(t, "env", "--format", "json", "--service", "db-client")
	got = nil
	json.Unmarshal([]byte(out), &got)
	if got["PGSSLMODE"] != "verify-full" || got["PGSSLCERT"] == "" {
		t.Fatalf("a service with the postgres format gets libpq's variables: %v", got)
	}
	show := mustCLI(t, "certs", "show", "--json")
	if !strings.Contains(show, `"api"`) || !strings.Contains(show, `"db-client"`) {
		t.Fatalf("the credentials do not cover the project's services:\n%s", show)
	}
	if _, _, code := cli(t, "env", "--service", "nope"); code != 2 {
		t.Fatalf("unknown service: exit %d", code)
	}
}

// TestFormatForShell: the default format on Windows follows the shell devmtls
// runs from, named as Windows names processes (or as a path); anything else
// gets the fallback.
func TestFormatForShell(t *testing.T) {
	for exe, want := range map[string]hostenv.Format{
		"cmd.exe":                           hostenv.FormatCmd,
		`C:\Windows\System32\CMD.EXE`:       hostenv.FormatCmd,
		"powershell.exe":                    hostenv.FormatPowerShell,
		"pwsh.exe":                          hostenv.FormatPowerShell,
		"/usr/local/bin/pwsh":               hostenv.FormatPowerShell,
		`C:\Program Files\Git\bin\bash.exe`: hostenv.FormatBash,
		"zsh":                               hostenv.FormatZsh,
		"fish":                              hostenv.FormatFish,
		"dash":                              hostenv.FormatSh,
		"explorer.exe":                      hostenv.FormatJSON,
		"Code.exe":                          hostenv.FormatJSON,
		"":                                  hostenv.FormatJSON,
		"cmd.exe.bak":                       hostenv.FormatJSON,
	} {
		if got := formatForShell(exe, hostenv.FormatJSON); got != want {
			t.Errorf("formatForShell(%q) = %s, want %s", exe, got, want)
		}
	}
}

// TestEnvDefaultFormat: without --format, devmtls env prints this platform's
// default (sh here; exec_windows_test.go checks Windows on Windows).
func TestEnvDefaultFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devmtls")
	want := &bytes.Buffer{}
	if err := hostenv.Render(want, defaultEnvFormat(), nil); err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(want.String(), "\n")
	if out := mustCLI(t, "--dir", dir, "env"); !strings.HasPrefix(out, header+"\n") {
		t.Errorf("devmtls env without --format printed\n%s\nwant the %s format (%q)", out, defaultEnvFormat(), header)
	}
}
