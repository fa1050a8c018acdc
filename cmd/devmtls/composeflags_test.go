package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseComposeArgs(t *testing.T) {
	for _, tc := range []struct {
		name            string
		args            []string
		untilSub        bool
		files, profiles []string
		project, dir    string
		globals, rest   []string
		help            bool
	}{
		{name: "up with everything", args: []string{"-f", "a.yaml", "--file=b.yaml", "-fc.yaml", "-p", "shop", "--profile", "debug", "--env-file", "ci.env", "--project-directory", "..", "-d", "--build", "api"},
			files: []string{"a.yaml", "b.yaml", "c.yaml"}, profiles: []string{"debug"}, project: "shop", rest: []string{"-d", "--build", "api"}},
		{name: "globals move before the subcommand", args: []string{"-d", "--ansi", "never", "--verbose", "--dir", "/env", "-t", "5"},
			dir: "/env", globals: []string{"--ansi", "never", "--verbose"}, rest: []string{"-d", "-t", "5"}},
		{name: "compose stops at the subcommand", untilSub: true, args: []string{"-f", "a.yaml", "logs", "-f", "api"},
			files: []string{"a.yaml"}, rest: []string{"logs", "-f", "api"}},
		{name: "compose exec keeps its command", untilSub: true, args: []string{"exec", "api", "sh", "-c", "echo -p"},
			rest: []string{"exec", "api", "sh", "-c", "echo -p"}},
		{name: "double dash ends parsing", args: []string{"-f", "a.yaml", "--", "-p", "x"}, files: []string{"a.yaml"}, rest: []string{"--", "-p", "x"}},
		{name: "help", args: []string{"-d", "--help"}, help: true, rest: []string{"-d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := parseComposeArgs(tc.args, tc.untilSub)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ca.project.files, tc.files) || !slices.Equal(ca.project.profiles, tc.profiles) || ca.project.projectName != tc.project ||
				ca.dir != tc.dir || !slices.Equal(ca.globals, tc.globals) || !slices.Equal(ca.rest, tc.rest) || ca.help != tc.help {
				t.Errorf("got %+v", ca)
			}
		})
	}
	if _, err := parseComposeArgs([]string{"-d", "-f"}, false); err == nil || !strings.Contains(err.Error(), "flag needs an argument: -f") {
		t.Errorf("missing value: %v", err)
	} else if code, _ := exitCodeOf(err); code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
}

// runCLI drives the real CLI in-process.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := report(run(context.Background(), args, &out, &errb), &errb)
	return out.String(), errb.String(), code
}

// Bad x-devmtls input stops every compose command before anything runs, with
// one line naming the file, the service and the field.
func TestBadExtensionStopsUp(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte("services:\n  api:\n    image: x\n    x-devmtls:\n      mount_path: mtls\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"up", "-d", "-f", file}, {"down", "-f", file}, {"compose", "-f", file, "ps"}, {"compose", "overlay", "-f", file}, {"status", "-f", file}} {
		_, stderr, code := runCLI(t, args...)
		want := "devmtls: " + file + `: services.api.x-devmtls.mount_path: must be an absolute path, got "mtls"` + "\n"
		if code != exitError || stderr != want {
			t.Errorf("%v: exit %d, stderr %q; want 1, %q", args, code, stderr, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".devmtls")); !os.IsNotExist(err) {
		t.Error("a failed command left an environment directory behind")
	}
}

func TestComposeWithoutProject(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCLI(t, "up", "--project-directory", dir)
	if code != exitUsage || !strings.Contains(stderr, "no compose file found in") {
		t.Errorf("exit %d stderr %q", code, stderr)
	}
	stdout, _, code := runCLI(t, "compose")
	if code != 0 || !strings.Contains(stdout, "devmtls compose overlay") {
		t.Errorf("bare compose prints help: exit %d %q", code, stdout)
	}
	stdout, _, code = runCLI(t, "up", "-f", "whatever.yaml", "--help")
	if code != 0 || !strings.Contains(stdout, "x-devmtls") {
		t.Errorf("up --help: exit %d %q", code, stdout)
	}
}

// devmtls certs inside a compose project covers its services; flags still win.
func TestCertsCoverComposeServices(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("x-devmtls: {names: [shop.local]}\nservices:\n  api: {image: x}\n  docs: {image: x, x-devmtls: false}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	stdout, stderr, code := runCLI(t, "certs", "--key-type", "ed25519")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "names:    api, host.docker.internal, localhost, shop.local, 127.0.0.1, ::1") || !strings.Contains(stdout, "ed25519") {
		t.Errorf("certs summary:\n%s", stdout)
	}
	if !strings.Contains(stdout, filepath.Join(dir, ".devmtls")) {
		t.Errorf("the environment is not next to compose.yaml:\n%s", stdout)
	}
	// A broken compose file does not stop credential management.
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  api: {image: x, x-devmtls: 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, "certs")
	if code != 0 || !strings.Contains(stderr, "warning: ignoring the compose project: compose.yaml: services.api.x-devmtls") {
		t.Errorf("exit %d stderr %q", code, stderr)
	}
}
