// Package ide writes IDE run configurations that carry a host process's mTLS
// variables: launch configurations in VS Code's .vscode/launch.json and
// JetBrains run configurations in .run/*.run.xml. Both merge into what is
// there: the user's own configurations, comments and settings stay as they
// are, and a second run with the same input changes nothing.
package ide

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/devmtls/devmtls/hostenv"
)

// Lang is a language runtime devmtls writes configurations for.
type Lang string

// The supported languages, in the order their configurations are written.
const (
	Go     Lang = "go"
	Python Lang = "python"
	Node   Lang = "node"
)

// Langs lists every supported language.
func Langs() []Lang { return []Lang{Go, Python, Node} }

// ParseLang accepts go, python or node (and a few common spellings).
func ParseLang(s string) (Lang, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "go", "golang":
		return Go, nil
	case "python", "py", "python3":
		return Python, nil
	case "node", "nodejs", "node.js", "js", "javascript":
		return Node, nil
	}
	return "", fmt.Errorf("unknown language %q: use go, python or node", s)
}

// Title is the language's name as people write it.
func (l Lang) Title() string {
	switch l {
	case Go:
		return "Go"
	case Python:
		return "Python"
	case Node:
		return "Node.js"
	}
	return string(l)
}

// Target is one configuration to write: a language and, when detection found
// them, the directory of its project and its entry point.
type Target struct {
	Lang Lang
	// Dir is the absolute directory of the language's project (go.mod,
	// package.json, pyproject.toml…), "" when unknown.
	Dir string
	// Entry is the absolute path of what to run: the main package's directory
	// for Go, the script for Python and Node.js; "" when unknown, in which case
	// the configuration runs the file open in the editor (VS Code) or leaves the
	// field for the user to fill in (JetBrains).
	Entry string
}

// Spec is what to write.
type Spec struct {
	// ProjectDir is the absolute directory the IDE opens: .vscode and .run go
	// there, and paths inside it are written relative to it.
	ProjectDir string
	// Service names the Compose service whose identity the variables carry
	// ("" for the host identity); it appears in the configuration names.
	Service string
	// Vars are the variables every configuration carries.
	Vars []hostenv.Var
	// Known are variables devmtls may have written before (hostenv.KnownNames);
	// those no longer in Vars are removed from devmtls's configurations, while
	// variables the user added stay.
	Known []string
	// Targets are the configurations to write, one per language.
	Targets []Target
	// EnvDir is the absolute environment directory the variables point
	// into. When set, every configuration brings the credentials up to date
	// before each launch by running `devmtls --dir EnvDir certs` (a VS Code
	// preLaunchTask, a JetBrains before-launch step), so a service started
	// from the IDE a month later never gets expired credentials.
	EnvDir string
}

// RenewName names the VS Code task and the JetBrains run configuration that
// bring the credentials up to date before a launch.
const RenewName = "devmtls: certs"

// renewArgs are the arguments of devmtls for the renewal step, with the
// environment directory written relative to the project where it can be.
func renewArgs(spec Spec, macro string) []string {
	return []string{"--dir", withMacro(spec.ProjectDir, macro, spec.EnvDir), "certs"}
}

// ConfigName is the name of the configuration devmtls owns for lang (and
// service). Re-runs find their configuration by this name.
func ConfigName(lang Lang, service string) string {
	if service == "" {
		return "devmtls: " + lang.Title()
	}
	return "devmtls: " + service + " (" + lang.Title() + ")"
}

// Group is the folder (JetBrains) or presentation group (VS Code) devmtls's
// configurations are listed under.
const Group = "devmtls"

// Result reports what a writer did to one file.
type Result struct {
	Path    string
	Created bool // the file did not exist
	Changed bool // the file's content changed
	// Added and Updated name the configurations added and the existing ones
	// whose variables changed.
	Added, Updated []string
}

// projectRel returns path relative to dir in slash form, and whether path is
// inside dir.
func projectRel(dir, path string) (string, bool) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// withMacro writes path relative to the project with the IDE's project-dir
// macro when it lies inside the project, so a committed configuration works on
// every teammate's machine; other paths stay absolute.
func withMacro(projectDir, macro, path string) string {
	rel, ok := projectRel(projectDir, path)
	if !ok {
		return path
	}
	if rel == "." {
		return macro
	}
	return macro + "/" + rel
}

// values returns the variables with path values rewritten by withMacro.
func values(spec Spec, macro string) []hostenv.Var {
	out := slices.Clone(spec.Vars)
	for i, v := range out {
		if v.Path {
			out[i].Value = withMacro(spec.ProjectDir, macro, v.Value)
		}
	}
	return out
}

// stale reports whether name is a variable devmtls wrote earlier that the
// current set does not have.
func stale(spec Spec, name string) bool {
	if !slices.Contains(spec.Known, name) {
		return false
	}
	for _, v := range spec.Vars {
		if v.Name == name {
			return false
		}
	}
	return true
}
