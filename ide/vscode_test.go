package ide

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/hostenv"
	"github.com/tailscale/hujson"
)

// userLaunch is a launch.json as people keep it: comments of both kinds,
// trailing commas, configurations of their own, tabs.
const userLaunch = `// Launch configurations for the orders service.
{
	"version": "0.2.0",
	/* Keep the API first: the team uses it most. */
	"configurations": [
		{
			"name": "API", // the main one
			"type": "go",
			"request": "launch",
			"program": "${workspaceFolder}/cmd/api",
			"env": {"LOG_LEVEL": "debug",},
		},
		// {
		//	"name": "old worker",
		// },
		{
			"name": "Attach",
			"type": "node",
			"request": "attach",
			"port": 9229,
		},
	],
	"compounds": [],
}
`

func testSpec(t testing.TB, dir string) Spec {
	t.Helper()
	files := filepath.Join(dir, ".devmtls")
	vars, err := hostenv.Build(hostenv.Input{
		Files: certsPaths(files), Names: hostenv.DefaultNames(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return Spec{ProjectDir: dir, Vars: vars, Known: hostenv.KnownNames(hostenv.DefaultNames()),
		Targets: []Target{{Lang: Go}, {Lang: Python}, {Lang: Node}}, EnvDir: files}
}

// standard parses HuJSON into plain Go values.
func standard(t *testing.T, b []byte) map[string]any {
	t.Helper()
	std, err := hujson.Standardize(bytes.Clone(b))
	if err != nil {
		t.Fatalf("result does not parse as HuJSON: %v\n%s", err, b)
	}
	var v map[string]any
	if err := json.Unmarshal(std, &v); err != nil {
		t.Fatalf("result is not a JSON object: %v\n%s", err, b)
	}
	return v
}

func configsByName(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, c := range standard(t, b)["configurations"].([]any) {
		cfg := c.(map[string]any)
		out[cfg["name"].(string)] = cfg
	}
	return out
}

func TestMergeLaunchKeepsUserContent(t *testing.T) {
	dir := "/home/jane/orders"
	spec := testSpec(t, dir)
	out, added, updated, err := MergeLaunch([]byte(userLaunch), spec)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"devmtls: Go", "devmtls: Python", "devmtls: Node.js"}; !reflect.DeepEqual(added, want) || updated != nil {
		t.Errorf("added %v updated %v, want added %v", added, updated, want)
	}
	s := string(out)
	for _, keep := range []string{"// Launch configurations for the orders service.", "/* Keep the API first: the team uses it most. */",
		"// the main one", "//\t\"name\": \"old worker\",", `"env": {"LOG_LEVEL": "debug",},`, `"compounds": [],`} {
		if !strings.Contains(s, keep) {
			t.Errorf("lost %q:\n%s", keep, s)
		}
	}
	// The user's configurations are unchanged, byte for byte.
	if !strings.HasPrefix(s, userLaunch[:strings.Index(userLaunch, "\t],")]) {
		t.Errorf("the text before the new configurations changed:\n%s", s)
	}
	cfgs := configsByName(t, out)
	if len(cfgs) != 5 {
		t.Fatalf("configurations = %d, want 5:\n%s", len(cfgs), s)
	}
	if cfgs["API"]["program"] != "${workspaceFolder}/cmd/api" || cfgs["Attach"]["port"] != float64(9229) {
		t.Errorf("user configurations changed: %v", cfgs)
	}
	for name, typ := range map[string]string{"devmtls: Go": "go", "devmtls: Python": "debugpy", "devmtls: Node.js": "node"} {
		cfg := cfgs[name]
		if cfg["type"] != typ || cfg["request"] != "launch" {
			t.Errorf("%s = %v", name, cfg)
		}
		env, _ := cfg["env"].(map[string]any)
		want := map[string]any{"MTLS_CERT": "${workspaceFolder}/.devmtls/cert", "MTLS_KEY": "${workspaceFolder}/.devmtls/key",
			"MTLS_CA": "${workspaceFolder}/.devmtls/ca", "MTLS_KEY_CERT": "${workspaceFolder}/.devmtls/key+cert"}
		if !reflect.DeepEqual(env, want) {
			t.Errorf("%s env = %v, want %v", name, env, want)
		}
		if cfg["presentation"].(map[string]any)["group"] != "devmtls" {
			t.Errorf("%s has no devmtls group", name)
		}
	}
	// New configurations are indented with the file's tabs and keep its
	// trailing-comma style.
	if !strings.Contains(s, "\t\t{\n\t\t\t\"name\": \"devmtls: Go\",\n") || !strings.Contains(s, "\t\t},\n\t],") {
		t.Errorf("new configurations are not laid out like the file:\n%s", s)
	}

	again, added, updated, err := MergeLaunch(out, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) || added != nil || updated != nil {
		t.Errorf("second merge changed the file (added %v, updated %v):\n%s", added, updated, again)
	}
}

func TestMergeLaunchUpdatesInPlace(t *testing.T) {
	dir := "/home/jane/orders"
	spec := testSpec(t, dir)
	spec.Targets = []Target{{Lang: Python}}
	first, _, _, err := MergeLaunch(nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	// The user points the configuration at their script and adds a variable.
	edited := strings.Replace(string(first), `"program": "${file}"`, `"program": "${workspaceFolder}/app.py", "args": ["--port", "8443"]`, 1)
	edited = strings.Replace(edited, `"env": {`, `"env": {
            // mine
            "DEBUG": "1",`, 1)
	if edited == string(first) {
		t.Fatal("test setup: edit did not apply")
	}
	// Now the runtime trust variables join and the layout changes: the
	// configuration keeps the user's edits and gains exactly those variables.
	spec.Vars = append(spec.Vars, hostenv.Var{Name: "NODE_EXTRA_CA_CERTS", Value: "/elsewhere/ca", Path: true})
	out, added, updated, err := MergeLaunch([]byte(edited), spec)
	if err != nil {
		t.Fatal(err)
	}
	if added != nil || !reflect.DeepEqual(updated, []string{"devmtls: Python"}) {
		t.Errorf("added %v updated %v", added, updated)
	}
	cfg := configsByName(t, out)["devmtls: Python"]
	if cfg["program"] != "${workspaceFolder}/app.py" || !strings.Contains(string(out), "// mine") {
		t.Errorf("user edits lost:\n%s", out)
	}
	env := cfg["env"].(map[string]any)
	if env["DEBUG"] != "1" || env["NODE_EXTRA_CA_CERTS"] != "/elsewhere/ca" || env["MTLS_CA"] != "${workspaceFolder}/.devmtls/ca" {
		t.Errorf("env = %v", env)
	}
	// Dropping the variable again removes it, and only it.
	spec.Vars = spec.Vars[:len(spec.Vars)-1]
	back, _, _, err := MergeLaunch(out, spec)
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != edited {
		t.Errorf("removing the variable did not restore the file:\n got %s\nwant %s", back, edited)
	}
}

func TestMergeLaunchNewFile(t *testing.T) {
	spec := testSpec(t, "/p")
	spec.Targets = []Target{{Lang: Go, Dir: "/p", Entry: "/p/cmd/server"}}
	out, _, _, err := MergeLaunch(nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
    "version": "0.2.0",
    "configurations": [
        {
            "name": "devmtls: Go",
            "type": "go",
            "request": "launch",
            "mode": "auto",
            "program": "${workspaceFolder}/cmd/server",
            "preLaunchTask": "devmtls: certs",
            "env": {
                "MTLS_CERT": "${workspaceFolder}/.devmtls/cert",
                "MTLS_KEY": "${workspaceFolder}/.devmtls/key",
                "MTLS_CA": "${workspaceFolder}/.devmtls/ca",
                "MTLS_KEY_CERT": "${workspaceFolder}/.devmtls/key+cert"
            },
            "presentation": {
                "group": "devmtls"
            }
        }
    ]
}
`
	if string(out) != want {
		t.Errorf("new launch.json:\n%s\nwant:\n%s", out, want)
	}
}

func TestMergeLaunchShapes(t *testing.T) {
	spec := testSpec(t, "/p")
	spec.Targets = []Target{{Lang: Node}}
	for name, src := range map[string]string{
		"no configurations":    `{"version": "0.2.0"}`,
		"empty object":         `{}`,
		"empty array, comment": "{\n  \"configurations\": [\n    // none yet\n  ]\n}",
		"one line":             `{"configurations": [{"name": "x", "type": "node", "request": "launch"}]}`,
		"comment after last":   "{\n  \"configurations\": [\n    {\"name\": \"x\"} // keep me\n    // and me\n  ]\n}",
		"bom":                  "\ufeff{\"configurations\": []}",
		"crlf":                 "{\r\n  \"configurations\": [\r\n    {\"name\": \"x\"},\r\n  ],\r\n}\r\n",
		"user env not object":  `{"configurations": [{"name": "x", "env": "oops"}]}`,
		"existing empty env":   `{"configurations": [{"name": "devmtls: Node.js", "env": {}}]}`,
		"existing no env":      "{\n  \"configurations\": [\n    {\n      \"name\": \"devmtls: Node.js\"\n    }\n  ]\n}",
		"inline env":           `{"configurations": [{"name": "devmtls: Node.js", "env": {"A": "1"}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			out, _, _, err := MergeLaunch([]byte(src), spec)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(src, "\ufeff") != bytes.HasPrefix(out, utf8BOM) {
				t.Errorf("byte order mark not kept")
			}
			if usesCRLF([]byte(src)) && !usesCRLF(out) {
				t.Errorf("line endings not kept:\n%q", out)
			}
			cfg := configsByName(t, bytes.TrimPrefix(out, utf8BOM))["devmtls: Node.js"]
			if env, _ := cfg["env"].(map[string]any); env["MTLS_KEY"] != "${workspaceFolder}/.devmtls/key" {
				t.Errorf("devmtls configuration missing or incomplete:\n%s", out)
			}
			for _, c := range []string{"// none yet", "// keep me", "// and me"} {
				if strings.Contains(src, c) && !strings.Contains(string(out), c) {
					t.Errorf("lost comment %q:\n%s", c, out)
				}
			}
			again, _, _, err := MergeLaunch(out, spec)
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("second merge: %v\n%s\nvs\n%s", err, again, out)
			}
		})
	}
}

func TestMergeLaunchRejects(t *testing.T) {
	spec := testSpec(t, "/p")
	for name, src := range map[string]string{
		"broken":                  `{"configurations": [`,
		"array top":               `[]`,
		"configurations a string": `{"configurations": "x"}`,
		"devmtls env not object":  `{"configurations": [{"name": "devmtls: Go", "env": []}]}`,
	} {
		if _, _, _, err := MergeLaunch([]byte(src), spec); err == nil {
			t.Errorf("%s: accepted %s", name, src)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %v", name, err)
		}
	}
}

func TestWriteVSCode(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(t, dir)
	results, err := WriteVSCode(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[1].Path != TasksPath(dir) || !results[1].Created || len(results[1].Added) != 1 {
		t.Fatalf("first write: %+v", results)
	}
	res := results[0]
	if !res.Created || !res.Changed || len(res.Added) != 3 {
		t.Errorf("first write: %+v", res)
	}
	path := LaunchPath(dir)
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi1, _ := os.Stat(path)
	results, err = WriteVSCode(spec)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	fi2, _ := os.Stat(path)
	if res := results[0]; res.Changed || results[1].Changed || !bytes.Equal(first, second) || !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Errorf("second write touched the file: %+v", res)
	}
	// A broken file is reported with its name and left as it was.
	if err := os.WriteFile(path, []byte("{ oops"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteVSCode(spec); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("broken launch.json: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{ oops" {
		t.Errorf("broken launch.json was changed to %q", b)
	}
	// The file's mode is kept.
	if err := os.WriteFile(path, []byte("{}"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteVSCode(spec); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
	}
}

func TestPathsOutsideProjectStayAbsolute(t *testing.T) {
	spec := testSpec(t, "/elsewhere")
	spec.ProjectDir = "/p"
	spec.Targets = []Target{{Lang: Go}}
	out, _, _, err := MergeLaunch(nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	env := configsByName(t, out)["devmtls: Go"]["env"].(map[string]any)
	if env["MTLS_CERT"] != "/elsewhere/.devmtls/cert" {
		t.Errorf("MTLS_CERT = %v", env["MTLS_CERT"])
	}
}
