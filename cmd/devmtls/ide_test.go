package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailscale/hujson"
)

// polyglotProject lays out a small repository with a Go service, a Python
// service and a Node.js service, and a launch.json the team already keeps.
func polyglotProject(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	for name, content := range map[string]string{
		"go.mod":                          "module example.com/shop\n",
		"cmd/orders/main.go":              "package main\n\nfunc main() {}\n",
		"internal/x/x.go":                 "package x\n",
		"services/billing/app.py":         "print('billing')\n",
		"services/billing/pyproject.toml": "[project]\nname = \"billing\"\n",
		"web/package.json":                `{"name": "web", "main": "src/server.js"}`,
		"web/src/server.js":               "console.log('web')\n",
		"web/node_modules/x/package.json": `{}`,
		".vscode/launch.json": `{
  // team configurations
  "version": "0.2.0",
  "configurations": [
    {"name": "Orders", "type": "go", "request": "launch", "program": "${workspaceFolder}/cmd/orders",},
  ],
}
`,
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestIDEVSCode(t *testing.T) {
	dir := polyglotProject(t)
	envDir := filepath.Join(dir, ".devmtls")
	args := []string{"--dir", envDir, "ide", "vscode", "--project-directory", dir, "--postgres"}
	stdout, stderr, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `Updated .vscode/launch.json: added "devmtls: Go", "devmtls: Python", "devmtls: Node.js"`) {
		t.Errorf("stdout = %q", stdout)
	}
	path := filepath.Join(dir, ".vscode", "launch.json")
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(first, []byte("// team configurations")) {
		t.Errorf("comment lost:\n%s", first)
	}
	std, err := hujson.Standardize(bytes.Clone(first))
	if err != nil {
		t.Fatalf("launch.json does not parse: %v", err)
	}
	var doc struct {
		Configurations []map[string]any `json:"configurations"`
	}
	if err := json.Unmarshal(std, &doc); err != nil {
		t.Fatal(err)
	}
	byName := map[string]map[string]any{}
	for _, c := range doc.Configurations {
		byName[c["name"].(string)] = c
	}
	if byName["Orders"] == nil || len(byName) != 4 {
		t.Fatalf("configurations: %v", byName)
	}
	// Detected entry points, relative to the workspace.
	for name, program := range map[string]string{"devmtls: Go": "${workspaceFolder}/cmd/orders", "devmtls: Python": "${workspaceFolder}/services/billing/app.py", "devmtls: Node.js": "${workspaceFolder}/web/src/server.js"} {
		cfg := byName[name]
		if cfg["program"] != program {
			t.Errorf("%s program = %v, want %s", name, cfg["program"], program)
		}
		env := cfg["env"].(map[string]any)
		if env["MTLS_KEY"] != "${workspaceFolder}/.devmtls/key" || env["PGSSLMODE"] != "verify-full" || env["PGSSLROOTCERT"] != "${workspaceFolder}/.devmtls/ca" {
			t.Errorf("%s env = %v", name, env)
		}
	}
	// The credentials exist where the configuration points.
	if _, err := os.Stat(filepath.Join(envDir, "key")); err != nil {
		t.Errorf("credentials not created: %v", err)
	}

	stdout, _, code = cli(t, args...)
	second, _ := os.ReadFile(path)
	if code != 0 || !bytes.Equal(first, second) || !strings.Contains(stdout, ".vscode/launch.json is up to date") {
		t.Errorf("second run: exit %d, %q, changed: %v", code, stdout, !bytes.Equal(first, second))
	}
}

func TestIDEJetBrains(t *testing.T) {
	dir := polyglotProject(t)
	envDir := filepath.Join(dir, ".devmtls")
	other := filepath.Join(dir, ".run", "Team.run.xml")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("<component name=\"ProjectRunConfigurationManager\" />\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--dir", envDir, "ide", "jetbrains", "--project-directory", dir, "--lang", "python,go"}
	if _, stderr, code := cli(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, ".run"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "Team.run.xml devmtls-certs.run.xml devmtls-go.run.xml devmtls-python.run.xml" {
		t.Errorf(".run holds %v", names)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".run", "devmtls-python.run.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Configuration struct {
			Name string `xml:"name,attr"`
			Envs []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"envs>env"`
			Options []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"option"`
		} `xml:"configuration"`
	}
	if err := xml.Unmarshal(b, &f); err != nil {
		t.Fatalf("XML does not parse: %v\n%s", err, b)
	}
	env := map[string]string{}
	for _, e := range f.Configuration.Envs {
		env[e.Name] = e.Value
	}
	if f.Configuration.Name != "devmtls: Python" || env["MTLS_CERT"] != "$PROJECT_DIR$/.devmtls/cert" || env["MTLS_KEY_CERT"] != "$PROJECT_DIR$/.devmtls/key+cert" {
		t.Errorf("run configuration: %+v", f.Configuration)
	}
	options := map[string]string{}
	for _, o := range f.Configuration.Options {
		options[o.Name] = o.Value
	}
	if script, ok := options["SCRIPT_NAME"]; !ok || script != "$PROJECT_DIR$/services/billing/app.py" {
		t.Errorf("SCRIPT_NAME = %q (set: %v)", script, ok)
	}
	stdout, _, code := cli(t, args...)
	again, _ := os.ReadFile(filepath.Join(dir, ".run", "devmtls-python.run.xml"))
	if code != 0 || !bytes.Equal(b, again) || strings.Count(stdout, "is up to date") != 3 {
		t.Errorf("second run: exit %d, %q", code, stdout)
	}
	if b, _ := os.ReadFile(other); string(b) != "<component name=\"ProjectRunConfigurationManager\" />\n" {
		t.Errorf("another run configuration was changed: %q", b)
	}
}

func TestIDEErrors(t *testing.T) {
	empty := t.TempDir()
	envDir := filepath.Join(empty, ".devmtls")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ide"}, exitUsage, "name the IDE"},
		{[]string{"ide", "emacs"}, exitUsage, `unknown IDE "emacs"`},
		{[]string{"ide", "vscode", "--lang", "rust", "--project-directory", empty}, exitUsage, `--lang: unknown language "rust"`},
		{[]string{"ide", "vscode", "--project-directory", filepath.Join(empty, "nope")}, exitUsage, "is not a directory"},
		{[]string{"ide", "vscode", "--project-directory", empty}, exitError, "found no Go, Python or Node.js project"},
		{[]string{"ide", "jetbrains", "--lang", "go", "--project-directory", empty, "--service", "../../evil"}, exitUsage, `--service: invalid service name "../../evil"`},
	} {
		_, stderr, code := cli(t, append([]string{"--dir", envDir}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.msg) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, ".vscode")); err == nil {
		t.Errorf("a failed run wrote .vscode")
	}
	// A broken launch.json is named and left alone.
	dir := polyglotProject(t)
	broken := filepath.Join(dir, ".vscode", "launch.json")
	if err := os.WriteFile(broken, []byte("{\n  \"configurations\": [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := cli(t, "--dir", filepath.Join(dir, ".devmtls"), "ide", "vscode", "--project-directory", dir)
	if code != exitError || !strings.Contains(stderr, broken) || !strings.Contains(stderr, "line 3") {
		t.Errorf("broken launch.json: exit %d, %q", code, stderr)
	}
}
