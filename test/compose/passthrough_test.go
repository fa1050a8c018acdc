package composetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/internal/testcreds"
	"github.com/devmtls/devmtls/internal/testenv"
)

// TestReadOnlyComposeCommandsNeverRenew: down and the read-only
// pass-throughs (ps, logs, config, exec) create no credentials where there are
// none, and leave expired ones — the files, the generation, the compose
// copies — exactly as they are, with either Compose line; a command that
// prepares the services (compose overlay, like up) then does renew them.
func TestReadOnlyComposeCommandsNeverRenew(t *testing.T) {
	t.Parallel()
	// exec fails here (no container runs), after devmtls has prepared
	// compose's command line as for any other pass-through.
	readOnly := [][]string{{"down"}, {"compose", "ps"}, {"compose", "logs"}, {"compose", "config"}, {"compose", "exec", "-T", "api", "true"}}
	testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
		requireDocker(t)
		// The image is never pulled: no command here creates a container.
		dir := writeFiles(t, map[string]string{"compose.yaml": "services:\n  api:\n    image: devmtls-e2e/never-pulled:none\n"})
		p := newE2EProject(t, dir, line)
		env := filepath.Join(dir, ".devmtls")
		run := func(args []string) {
			t.Helper()
			stdout, stderr, code := p.devmtls(args...)
			if code != 0 && !slices.Contains(args, "exec") {
				t.Fatalf("devmtls %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
			}
			if strings.Contains(stderr, "dev credentials") {
				t.Errorf("devmtls %s speaks of the credentials:\n%s", strings.Join(args, " "), stderr)
			}
		}

		for _, args := range readOnly {
			run(args)
			if _, err := os.Lstat(filepath.Join(env, "cert")); !os.IsNotExist(err) {
				t.Fatalf("devmtls %s created credentials: %v", strings.Join(args, " "), err)
			}
		}

		p.must("compose", "overlay") // credentials, copies and overlay
		testcreds.Expire(t, env)
		before := snapshotCredentials(t, env)
		for _, args := range readOnly {
			run(args)
			if after := snapshotCredentials(t, env); after != before {
				t.Fatalf("devmtls %s changed the expired credentials:\nbefore %s\nafter  %s", strings.Join(args, " "), before, after)
			}
		}
		// The same snapshot tells a renewal: compose overlay prepares the
		// services as up does, and renews.
		if _, stderr, code := p.devmtls("compose", "overlay"); code != 0 || !strings.Contains(stderr, "renewed dev credentials") {
			t.Fatalf("compose overlay did not renew the expired credentials: exit %d\n%s", code, stderr)
		}
		if snapshotCredentials(t, env) == before {
			t.Error("the snapshot did not change when the credentials were renewed")
		}
	})
}

// snapshotCredentials describes what a renewal changes: the generation the
// environment's files are in, its state, its key, and the generation of the
// compose copies.
func snapshotCredentials(t *testing.T, env string) string {
	t.Helper()
	var b bytes.Buffer
	for _, link := range []string{"..data", filepath.Join("compose", "api", "mtls", "..data")} {
		target, err := os.Readlink(filepath.Join(env, link))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(link + " -> " + target + "; ")
	}
	for _, f := range []string{"state.json", "key"} {
		data, err := os.ReadFile(filepath.Join(env, f))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		b.WriteString(f + " " + hex.EncodeToString(sum[:8]) + "; ")
	}
	return b.String()
}
