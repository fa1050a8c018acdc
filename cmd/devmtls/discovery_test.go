package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryCommandFindsTheSameEnvironment: with COMPOSE_FILE set in .env,
// the commands that load the project (certs, compose overlay, env) and those
// that only look for its directory (certs show) use the same environment
// directory, next to the compose file compose itself would use.
func TestEveryCommandFindsTheSameEnvironment(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, ".env"), "COMPOSE_FILE=app/compose.yaml\n")
	writeFile(t, filepath.Join(root, "app", "compose.yaml"), "services:\n  api:\n    image: x\n")
	t.Chdir(root)
	unsetDiscoveryEnv(t)
	want := filepath.Join(root, "app", ".devmtls")

	if out := mustCLI(t, "certs"); !strings.Contains(out, "Created dev credentials in "+want+"\n") {
		t.Errorf("devmtls certs:\n%s", out)
	}
	var show certsShowJSON
	if err := json.Unmarshal([]byte(mustCLI(t, "certs", "show", "--json")), &show); err != nil || show.Dir != want {
		t.Errorf("devmtls certs show: dir %q, %v", show.Dir, err)
	}
	if out := mustCLI(t, "compose", "overlay"); !strings.Contains(out, filepath.Join(want, "compose", "api", "mtls")) {
		t.Errorf("devmtls compose overlay does not mount %s's copies:\n%s", want, out)
	}
	var vars map[string]string
	if err := json.Unmarshal([]byte(mustCLI(t, "env", "--format", "json")), &vars); err != nil || vars["MTLS_CERT"] != filepath.Join(want, "cert") {
		t.Errorf("devmtls env: %v, %v", vars, err)
	}
	if _, err := os.Stat(filepath.Join(root, ".devmtls")); !os.IsNotExist(err) {
		t.Errorf("a second environment appeared in the working directory: %v", err)
	}

	// A COMPOSE_FILE naming no file stops a command that must find the
	// environment, with compose's sentence, instead of picking another one.
	writeFile(t, filepath.Join(root, ".env"), "COMPOSE_FILE=gone.yaml\n")
	_, stderr, code := cli(t, "certs", "show")
	if code != exitError || !strings.Contains(stderr, `compose file "gone.yaml" set by COMPOSE_FILE environment variable is invalid`) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// unsetDiscoveryEnv unsets, until the test ends, the variables that choose a
// compose project or an environment directory, so a test that works in its
// own directory finds what it laid out there.
func unsetDiscoveryEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR", "COMPOSE_DISABLE_ENV_FILE", "COMPOSE_PROJECT_NAME", "DEVMTLS_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Setenv(k, v) // restores it when the test ends
			os.Unsetenv(k)
		}
	}
}

// writeFile writes p, creating its directory.
func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := errors.Join(os.MkdirAll(filepath.Dir(p), 0o755), os.WriteFile(p, []byte(content), 0o644)); err != nil {
		t.Fatal(err)
	}
}
