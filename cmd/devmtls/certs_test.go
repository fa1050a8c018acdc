package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/devmtls/devmtls/certs"
)

func TestVersion(t *testing.T) {
	out := mustCLI(t, "version")
	if !strings.Contains(out, "devmtls ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version output: %q", out)
	}
	// The Makefile's -ldflags reach the devmtlsBin.
	got, err := exec.Command(devmtlsBin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal(got, &v); err != nil || v.Version != "v9.9.9-test" || v.Commit != "abc123" {
		t.Fatalf("version --json = %s (%v)", got, err)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"certs", "--no-such-flag"}, "unknown flag"},
		{[]string{"--dir", dir, "certs", "--key-type", "dsa"}, "--key-type"},
		{[]string{"--dir", dir, "certs", "--mode", "mesh"}, "--mode"},
		{[]string{"--dir", dir, "certs", "--validity", "forever"}, "--validity"},
		{[]string{"--dir", dir, "certs", "--name", "not a name"}, "--name"},
		{[]string{"--dir", dir, "certs", "extra"}, "takes no arguments"},
		{[]string{"--dir", dir, "certs", "export", "--out", dir}, "--format is required"},
		{[]string{"--dir", dir, "certs", "export", "--format", "jks", "--out", dir}, "--format"},
		{[]string{"--dir", dir, "certs", "export", "--format", "pem"}, "--out is required"},
		{[]string{"--dir", dir, "certs", "export", "--format", "pem", "--out", dir, "--password", "x"}, "--password only applies"},
	} {
		_, errOut, code := cli(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("devmtls %v: exit %d, stderr %q; want exit 2 and one line mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		t.Error("a usage error still created credentials")
	}
}

func TestCertsCommandLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env")
	out := mustCLI(t, "--dir", dir, "certs")
	if !strings.Contains(out, "Created dev credentials in "+dir) {
		t.Fatalf("first run: %q", out)
	}
	out = mustCLI(t, "--dir", dir, "certs")
	if !strings.Contains(out, "up to date") {
		t.Fatalf("second run: %q", out)
	}
	out = mustCLI(t, "--dir", dir, "certs", "--name", "orders.test", "--key-type", "ed25519")
	if !strings.Contains(out, "Renewed") || !strings.Contains(out, "orders.test") {
		t.Fatalf("renewal: %q", out)
	}
	var show certsShowJSON
	if err := json.Unmarshal([]byte(mustCLI(t, "--dir", dir, "certs", "show", "--json")), &show); err != nil {
		t.Fatal(err)
	}
	if show.KeyType != certs.KeyEd25519 || !slices.Contains(show.Names, "orders.test") || show.Files.Key != filepath.Join(dir, "key") ||
		len(show.Fingerprint) != 95 || !show.NotAfter.After(show.NotBefore) {
		t.Fatalf("show --json: %+v", show)
	}
	text := mustCLI(t, "--dir", dir, "certs", "show")
	for _, want := range []string{"Mode:         shared", "ed25519", show.Fingerprint, filepath.Join(dir, "key+cert")} {
		if !strings.Contains(text, want) {
			t.Errorf("show output lacks %q:\n%s", want, text)
		}
	}
	mustCLI(t, "--dir", dir, "certs", "rotate")
	var after certsShowJSON
	json.Unmarshal([]byte(mustCLI(t, "--dir", dir, "certs", "show", "--json")), &after)
	if after.Fingerprint == show.Fingerprint || after.KeyType != certs.KeyEd25519 {
		t.Fatalf("rotate: fingerprint %s -> %s, key type %s", show.Fingerprint, after.Fingerprint, after.KeyType)
	}

	exportDir := filepath.Join(t.TempDir(), "pg")
	out = mustCLI(t, "--dir", dir, "certs", "export", "--format", "postgres", "--out", exportDir)
	for _, f := range []string{"cacert", "cert", "key"} {
		if !strings.Contains(out, f) {
			t.Errorf("export output lacks %s: %q", f, out)
		}
		if _, err := os.Stat(filepath.Join(exportDir, f)); err != nil {
			t.Error(err)
		}
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("from-a-file\n"), 0o600)
	p12 := filepath.Join(t.TempDir(), "java")
	mustCLI(t, "--dir", dir, "certs", "export", "--format", "pkcs12", "--password-file", pw, "--out", p12)
	if _, err := os.Stat(filepath.Join(p12, "keystore.p12")); err != nil {
		t.Fatal(err)
	}
}

func TestShowWithoutCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	_, errOut, code := cli(t, "--dir", dir, "certs", "show")
	if code != 1 || !strings.Contains(errOut, "run `devmtls certs`") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

func TestDamagedFileErrorIsOneSentence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env")
	mustCLI(t, "--dir", dir, "certs")
	os.WriteFile(filepath.Join(dir, "cert"), []byte("garbage"), 0o644)
	_, errOut, code := cli(t, "--dir", dir, "certs")
	want := "devmtls: " + filepath.Join(dir, "cert") + " was changed outside devmtls"
	if code != 1 || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "devmtls certs rotate") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
	mustCLI(t, "--dir", dir, "certs", "rotate")
	mustCLI(t, "--dir", dir, "certs")
}

func TestEnvironmentDirectoryDiscovery(t *testing.T) {
	root := t.TempDir()
	project := filepath.Join(root, "shop")
	sub := filepath.Join(project, "services", "api")
	os.MkdirAll(sub, 0o755)
	os.WriteFile(filepath.Join(project, "compose.yaml"), []byte("services: {}\n"), 0o644)
	t.Setenv("DEVMTLS_DIR", "")
	t.Setenv("COMPOSE_FILE", "")

	t.Chdir(sub)
	mustCLI(t, "certs")
	if _, err := os.Stat(filepath.Join(project, ".devmtls", "cert")); err != nil {
		t.Fatalf("inside a compose project the environment lives next to compose.yaml: %v", err)
	}

	elsewhere := filepath.Join(root, "scratch")
	os.MkdirAll(elsewhere, 0o755)
	t.Chdir(elsewhere)
	mustCLI(t, "certs")
	if _, err := os.Stat(filepath.Join(elsewhere, ".devmtls", "cert")); err != nil {
		t.Fatalf("outside a project the environment lives in the working directory: %v", err)
	}

	fromEnv := filepath.Join(root, "from-env")
	t.Setenv("DEVMTLS_DIR", fromEnv)
	mustCLI(t, "certs")
	if _, err := os.Stat(filepath.Join(fromEnv, "cert")); err != nil {
		t.Fatalf("DEVMTLS_DIR ignored: %v", err)
	}
	fromFlag := filepath.Join(root, "from-flag")
	mustCLI(t, "--dir", fromFlag, "certs")
	if _, err := os.Stat(filepath.Join(fromFlag, "cert")); err != nil {
		t.Fatalf("--dir must win over DEVMTLS_DIR: %v", err)
	}
}

// TestConcurrentProcessesEndWithOnePair runs eight real devmtls processes
// against one fresh directory, twice over (creation, then forced rotations),
// and checks the result is one consistent, verifiable pair.
func TestConcurrentProcessesEndWithOnePair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env")
	for _, args := range [][]string{{"certs"}, {"certs", "rotate"}} {
		var wg sync.WaitGroup
		outs := make([]string, 8)
		errs := make([]error, 8)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out bytes.Buffer
				cmd := exec.Command(devmtlsBin, append([]string{"--dir", dir}, args...)...)
				cmd.Stdout, cmd.Stderr = &out, &out
				errs[i] = cmd.Run()
				outs[i] = out.String()
			}()
		}
		wg.Wait()
		created := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("process %d (%v): %v\n%s", i, args, err, outs[i])
			}
			if strings.HasPrefix(outs[i], "Created") {
				created++
			}
		}
		if args[len(args)-1] == "certs" && created != 1 {
			t.Fatalf("%d processes created credentials, want exactly 1", created)
		}
		c, err := (&certs.Store{Dir: dir}).Load(t.Context())
		if err != nil {
			t.Fatalf("after concurrent %v: %v", args, err)
		}
		keyCert, _ := os.ReadFile(c.Top.Paths.KeyCert)
		cert, _, err := certs.ParseKeyPairPEM(keyCert)
		if err != nil || !cert.Equal(c.Top.Certificate) {
			t.Fatalf("key+cert does not hold the current pair: %v", err)
		}
		matches, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*"))
		staged, _ := filepath.Glob(filepath.Join(dir, ".next.*"))
		if len(matches)+len(staged) != 0 {
			t.Fatalf("temporary files left behind: %v %v", matches, staged)
		}
	}
}
