package ide

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// maxDetectDepth bounds how deep Detect looks below the project directory:
// deep enough for services/orders/cmd/server, shallow enough to stay quick in
// a large monorepo.
const maxDetectDepth = 3

// skipDir are directories that hold dependencies, build output or tooling,
// never a project's own code.
func skipDir(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return true
	}
	switch name {
	case "node_modules", "vendor", "venv", "env", "__pycache__", "testdata", "dist", "build", "target", "site-packages":
		return true
	}
	return false
}

var (
	pythonMarkers = []string{"pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile"}
	pythonEntries = []string{"main.py", "app.py", "server.py", "__main__.py", "manage.py"}
	nodeEntries   = []string{"index.js", "server.js", "app.js", "main.js", "index.mjs", "server.mjs"}
)

// Detect looks for Go, Python and Node.js projects in dir and the directories
// below it (breadth first, so the shallowest wins, then alphabetical order) and
// returns one Target per language found, in Langs order.
func Detect(dir string) []Target {
	found := map[Lang]Target{}
	walkBFS(dir, maxDetectDepth, func(d string, names map[string]bool) {
		if _, ok := found[Go]; !ok && names["go.mod"] {
			found[Go] = Target{Lang: Go, Dir: d, Entry: goMain(d)}
		}
		if _, ok := found[Node]; !ok && names["package.json"] {
			found[Node] = Target{Lang: Node, Dir: d, Entry: nodeEntry(d, names)}
		}
		if _, ok := found[Python]; !ok {
			marked := false
			for _, m := range append(pythonMarkers, pythonEntries...) {
				marked = marked || names[m]
			}
			if marked {
				t := Target{Lang: Python, Dir: d}
				for _, e := range pythonEntries {
					if names[e] {
						t.Entry = filepath.Join(d, e)
						break
					}
				}
				found[Python] = t
			}
		}
	})
	var out []Target
	for _, l := range Langs() {
		if t, ok := found[l]; ok {
			out = append(out, t)
		}
	}
	return out
}

// walkBFS calls visit for dir and every directory below it up to depth, with
// the set of regular file names in it.
func walkBFS(dir string, depth int, visit func(dir string, files map[string]bool)) {
	level := []string{dir}
	for d := 0; d <= depth && len(level) > 0; d++ {
		var next []string
		for _, cur := range level {
			entries, err := os.ReadDir(cur) // sorted by name
			if err != nil {
				continue
			}
			files := map[string]bool{}
			for _, e := range entries {
				switch {
				case e.Type().IsRegular():
					files[e.Name()] = true
				case e.IsDir() && !skipDir(e.Name()):
					next = append(next, filepath.Join(cur, e.Name()))
				}
			}
			visit(cur, files)
		}
		level = next
	}
}

// goMain finds the shallowest directory of the module at dir holding a main
// package, "" if none.
func goMain(dir string) string {
	var main string
	walkBFS(dir, maxDetectDepth, func(d string, files map[string]bool) {
		if main != "" || (d != dir && files["go.mod"]) {
			return
		}
		for name := range files {
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(d, name), nil, parser.PackageClauseOnly)
			if err == nil && f.Name.Name == "main" {
				main = d
				return
			}
		}
	})
	return main
}

// nodeEntry is package.json's "main" when that file exists, else a
// conventional entry file, else "".
func nodeEntry(dir string, files map[string]bool) string {
	if data, err := os.ReadFile(filepath.Join(dir, "package.json")); err == nil {
		var pkg struct {
			Main string `json:"main"`
		}
		if json.Unmarshal(data, &pkg) == nil && pkg.Main != "" {
			p := filepath.Join(dir, filepath.FromSlash(pkg.Main))
			if _, ok := projectRel(dir, p); ok {
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					return p
				}
			}
		}
	}
	for _, e := range nodeEntries {
		if files[e] {
			return filepath.Join(dir, e)
		}
	}
	return ""
}
