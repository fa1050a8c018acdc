//go:build linux

package composetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/internal/testenv"
)

// TestEnvAndExecOnAReadOnlyFileSystem: with valid credentials, env and exec
// read them without writing anything, so they work where the project is
// mounted read-only (a container, a read-only checkout). The test remounts
// the project read-only in a private mount namespace (unshare -m; -r maps
// the user to root there when not root).
func TestEnvAndExecOnAReadOnlyFileSystem(t *testing.T) {
	unshare := testenv.LookPath(t, "unshare", "apt-get install util-linux")
	project := t.TempDir()
	writeFile(t, filepath.Join(project, "compose.yaml"), hostileProject)
	env := filepath.Join(project, ".devmtls")
	if _, stderr, code := runIn(t, project, nil, "certs"); code != 0 {
		t.Fatalf("devmtls certs: exit %d: %s", code, stderr)
	}
	flags := "-m"
	if os.Geteuid() != 0 {
		flags = "-rm"
	}
	script := `set -e
mount --bind "$1" "$1"
mount -o remount,ro,bind "$1"
if touch "$1/.devmtls/probe" 2>/dev/null; then echo "not read-only"; exit 3; fi
cd "$1"
"$2" env --format dotenv
"$2" exec -- sh -c 'test -r "$MTLS_KEY" && echo exec-ok'
`
	out, err := exec.Command(unshare, flags, "sh", "-c", script, "sh", project, devmtlsBin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "unshare failed") {
			testenv.Missing(t, "mount namespaces", "run the tests as root, or allow unprivileged user namespaces")
		}
		t.Fatalf("env/exec on a read-only file system: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "MTLS_KEY="+filepath.Join(env, "key")) && !strings.Contains(string(out), "MTLS_KEY='"+filepath.Join(env, "key")) {
		t.Errorf("env printed no MTLS_KEY:\n%s", out)
	}
	if !strings.Contains(string(out), "exec-ok") || strings.Contains(string(out), "devmtls:") {
		t.Errorf("exec did not run cleanly:\n%s", out)
	}
}
