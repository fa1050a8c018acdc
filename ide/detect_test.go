package ide

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"go.mod":                          "module x\n",
		"pkg/lib.go":                      "package lib\n",
		"cmd/b/main.go":                   "package main\n",
		"cmd/a/main_test.go":              "package main\n", // tests alone are not a program
		"tools/go.mod":                    "module tools\n", // a nested module is not this one's main
		"tools/main.go":                   "package main\n",
		"services/api/requirements.txt":   "flask\n",
		"services/api/main.py":            "",
		"services/zz/pyproject.toml":      "",
		"web/package.json":                `{"main": "../escape.js"}`,
		"web/index.js":                    "",
		"node_modules/dep/package.json":   `{}`,
		".hidden/go.mod":                  "module hidden\n",
		"a/b/c/d/deep/requirements.txt":   "", // deeper than Detect looks
		"services/api/venv/pyvenv.cfg":    "",
		"services/api/venv/lib/setup.py":  "",
		"vendor/github.com/x/y/go.mod":    "",
		"web/node_modules/z/package.json": `{}`,
	})
	got := Detect(dir)
	want := []Target{
		{Lang: Go, Dir: dir, Entry: filepath.Join(dir, "cmd", "b")},
		{Lang: Python, Dir: filepath.Join(dir, "services", "api"), Entry: filepath.Join(dir, "services", "api", "main.py")},
		{Lang: Node, Dir: filepath.Join(dir, "web"), Entry: filepath.Join(dir, "web", "index.js")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Detect =\n%+v\nwant\n%+v", got, want)
	}
	if got := Detect(t.TempDir()); got != nil {
		t.Errorf("empty directory: %+v", got)
	}
	one := t.TempDir()
	writeTree(t, one, map[string]string{"package.json": `{"main": "src/app.js"}`, "src/app.js": ""})
	if got := Detect(one); len(got) != 1 || got[0].Entry != filepath.Join(one, "src", "app.js") {
		t.Errorf("package.json main: %+v", got)
	}
}

func TestParseLang(t *testing.T) {
	for in, want := range map[string]Lang{"go": Go, "Golang": Go, "python": Python, "py": Python, "node": Node, "Node.js": Node, "js": Node} {
		if got, err := ParseLang(in); err != nil || got != want {
			t.Errorf("ParseLang(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseLang("rust"); err == nil {
		t.Error("ParseLang accepted rust")
	}
}
