package ide

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/devmtls/devmtls/hostenv"
	"github.com/devmtls/devmtls/internal/atomicfile"
	"github.com/tailscale/hujson"
)

// VSCodeMacro is what VS Code substitutes with the folder that holds .vscode.
const VSCodeMacro = "${workspaceFolder}"

// LaunchPath is the file VS Code reads launch configurations from.
func LaunchPath(projectDir string) string {
	return filepath.Join(projectDir, ".vscode", "launch.json")
}

// newLaunchJSON is where a new launch.json starts, as VS Code creates it.
const newLaunchJSON = "{\n    \"version\": \"0.2.0\",\n    \"configurations\": []\n}\n"

var utf8BOM = []byte("\xef\xbb\xbf")

// WriteVSCode adds devmtls's launch configurations to the project's
// .vscode/launch.json, or updates the variables of those already there, and
// (with Spec.EnvDir) the task they run before each launch to
// .vscode/tasks.json. Each file is rewritten atomically and only when its
// content changes.
func WriteVSCode(spec Spec) ([]Result, error) {
	launch, err := writeJSONFile(LaunchPath(spec.ProjectDir), func(src []byte) ([]byte, []string, []string, error) {
		return MergeLaunch(src, spec)
	})
	if err != nil || spec.EnvDir == "" {
		return []Result{launch}, err
	}
	tasks, err := writeJSONFile(TasksPath(spec.ProjectDir), func(src []byte) ([]byte, []string, []string, error) {
		out, added, updated, err := MergeTasks(src, spec)
		var a, u []string
		if added {
			a = []string{RenewName}
		}
		if updated {
			u = []string{RenewName}
		}
		return out, a, u, err
	})
	return []Result{launch, tasks}, err
}

// writeJSONFile merges into one JSON-with-comments file of .vscode.
func writeJSONFile(path string, merge func(src []byte) (out []byte, added, updated []string, err error)) (Result, error) {
	res := Result{Path: path}
	// Write through a symlinked file (dotfiles setups) instead of replacing
	// the link with a file.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	src, err := os.ReadFile(path)
	perm := fs.FileMode(0o644)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.Created = true
	case err != nil:
		return res, fmt.Errorf("read %s: %w", res.Path, err)
	default:
		if fi, err := os.Stat(path); err == nil {
			perm = fi.Mode().Perm()
		}
	}
	out, added, updated, err := merge(src)
	if err != nil {
		return res, fmt.Errorf("%s: %w", res.Path, err)
	}
	res.Added, res.Updated = added, updated
	if !res.Created && bytes.Equal(out, src) {
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return res, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := atomicfile.WriteFile(path, out, perm); err != nil {
		return res, err
	}
	res.Changed = true
	return res, nil
}

// MergeLaunch returns the launch.json src (JSON with comments and trailing
// commas, as VS Code reads it; empty for a new file) with spec's configurations
// added or their variables updated. It also returns the names of the
// configurations it added and of those it updated.
//
// A configuration is devmtls's when its name is ConfigName(lang, service). In
// one that exists, only the variables in "env" change: devmtls's are set,
// stale ones (Spec.Known) removed, and everything else the user changed —
// program, args, cwd, their own variables — stays.
func MergeLaunch(src []byte, spec Spec) (out []byte, added, updated []string, err error) {
	doc, err := openJSON(src, newLaunchJSON)
	if err != nil {
		return nil, nil, nil, err
	}
	m := doc.merger
	arr, arrIndent, err := doc.array("configurations")
	if err != nil {
		return nil, nil, nil, err
	}
	vars := values(spec, VSCodeMacro)
	for _, t := range spec.Targets {
		name := ConfigName(t.Lang, spec.Service)
		found, changed := false, false
		for i := range arr.Elements {
			cfg, ok := arr.Elements[i].Value.(*hujson.Object)
			if !ok {
				continue
			}
			if n := member(cfg, "name"); n == nil || n.Value.Kind() != '"' || n.Value.(hujson.Literal).String() != name {
				continue
			}
			found = true
			c, err := m.mergeEnv(cfg, m.indent(&arr.Elements[i]), spec)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("configuration %q: %w", name, err)
			}
			changed = changed || c
			changed = m.addPreLaunchTask(cfg, m.indent(&arr.Elements[i]), spec) || changed
		}
		switch {
		case !found:
			itemIndent := arrIndent + m.unit
			if len(arr.Elements) > 0 {
				itemIndent = m.elementIndent(arr, arrIndent)
			}
			val := mustParse(launchConfigJSON(spec, t, name, vars, itemIndent, m.unit))
			appendElement(arr, arrIndent, m.unit, val)
			m.indents[arr.Elements[len(arr.Elements)-1].Value] = itemIndent
			added = append(added, name)
		case changed:
			updated = append(updated, name)
		}
	}
	out = doc.pack()
	return out, added, updated, nil
}

// jsonDoc is a JSON-with-comments file being edited.
type jsonDoc struct {
	bom    bool // the file starts with a UTF-8 byte order mark
	body   []byte
	root   hujson.Value
	obj    *hujson.Object
	merger *jsonMerger
}

// openJSON parses src (empty: a new file holding fresh) as VS Code reads its
// files: JSON with comments and trailing commas, an optional BOM.
func openJSON(src []byte, fresh string) (*jsonDoc, error) {
	d := &jsonDoc{bom: bytes.HasPrefix(src, utf8BOM), body: bytes.TrimPrefix(src, utf8BOM)}
	if len(bytes.TrimSpace(d.body)) == 0 {
		d.body = []byte(fresh)
	}
	var err error
	if d.root, err = hujson.Parse(d.body); err != nil {
		return nil, fmt.Errorf("not valid JSON with comments (%v); fix the file or move it aside", err)
	}
	var ok bool
	if d.obj, ok = d.root.Value.(*hujson.Object); !ok {
		return nil, fmt.Errorf("the top level is not a JSON object; fix the file or move it aside")
	}
	d.merger = &jsonMerger{src: d.body, unit: detectIndentUnit(d.body), indents: map[any]string{}}
	return d, nil
}

// array returns the top-level array name, added when missing, with the
// indentation of its line.
func (d *jsonDoc) array(name string) (*hujson.Array, string, error) {
	m := d.merger
	rootIndent := m.indent(&d.root)
	v := member(d.obj, name)
	if v == nil {
		appendMember(d.obj, rootIndent, m.unit, name, mustParse("[]"))
		v = member(d.obj, name)
		m.indents[v.Value] = m.memberIndent(d.obj, rootIndent)
	}
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		return nil, "", fmt.Errorf("%q is not an array; fix the file or move it aside", name)
	}
	return arr, m.indent(v), nil
}

// pack renders the edited file with its line endings and BOM.
func (d *jsonDoc) pack() []byte {
	out := d.root.Pack()
	if usesCRLF(d.body) {
		out = toCRLF(out)
	}
	if d.bom {
		out = append(append([]byte{}, utf8BOM...), out...)
	}
	return out
}

type jsonMerger struct {
	src  []byte
	unit string
	// indents holds the line indentation of containers devmtls inserted, which
	// have no position in src.
	indents map[any]string
}

// indent is the indentation of the line a container value starts on.
func (m *jsonMerger) indent(v *hujson.Value) string {
	switch v.Value.(type) {
	case *hujson.Object, *hujson.Array: // comparable map keys
		if ind, ok := m.indents[v.Value]; ok {
			return ind
		}
	}
	return lineIndent(m.src, v.StartOffset)
}

// memberIndent is the indentation of obj's last member.
func (m *jsonMerger) memberIndent(obj *hujson.Object, objIndent string) string {
	if n := len(obj.Members); n > 0 {
		b := obj.Members[n-1].Name.BeforeExtra
		if nl := bytes.LastIndexByte(b, '\n'); nl >= 0 {
			return leadingSpace(b[nl+1:])
		}
	}
	return objIndent + m.unit
}

func (m *jsonMerger) elementIndent(arr *hujson.Array, arrIndent string) string {
	if n := len(arr.Elements); n > 0 {
		b := arr.Elements[n-1].BeforeExtra
		if nl := bytes.LastIndexByte(b, '\n'); nl >= 0 {
			return leadingSpace(b[nl+1:])
		}
	}
	return arrIndent + m.unit
}

// mergeEnv sets devmtls's variables in cfg's "env" and removes stale ones.
func (m *jsonMerger) mergeEnv(cfg *hujson.Object, cfgIndent string, spec Spec) (bool, error) {
	vars := values(spec, VSCodeMacro)
	env := member(cfg, "env")
	if env == nil {
		memberIndent := m.memberIndent(cfg, cfgIndent)
		var fields []field
		for _, v := range vars {
			fields = append(fields, field{v.Name, v.Value})
		}
		appendMember(cfg, cfgIndent, m.unit, "env", mustParse(renderJSON(fields, memberIndent, m.unit)))
		return true, nil
	}
	envObj, ok := env.Value.(*hujson.Object)
	if !ok {
		return false, fmt.Errorf(`"env" is not an object`)
	}
	envIndent := m.indent(env)
	changed := false
	for _, v := range vars {
		if cur := member(envObj, v.Name); cur != nil {
			if lit, ok := cur.Value.(hujson.Literal); ok && lit.Kind() == '"' && lit.String() == v.Value {
				continue
			}
			cur.Value = hujson.String(v.Value)
		} else {
			appendMember(envObj, envIndent, m.unit, v.Name, hujson.Value{Value: hujson.String(v.Value)})
		}
		changed = true
	}
	for i := len(envObj.Members) - 1; i >= 0; i-- {
		if lit, ok := envObj.Members[i].Name.Value.(hujson.Literal); ok && stale(spec, lit.String()) {
			removeItem(objectItems(envObj), i)
			changed = true
		}
	}
	return changed, nil
}

// addPreLaunchTask makes an existing configuration of devmtls run the renewal
// task before each launch, unless it already names a preLaunchTask: one the
// user chose stays (they may chain devmtls's from it).
func (m *jsonMerger) addPreLaunchTask(cfg *hujson.Object, cfgIndent string, spec Spec) bool {
	if spec.EnvDir == "" || member(cfg, "preLaunchTask") != nil {
		return false
	}
	appendMember(cfg, cfgIndent, m.unit, "preLaunchTask", hujson.Value{Value: hujson.String(RenewName)})
	return true
}

// launchConfigJSON is a new launch configuration for t, as VS Code's own
// snippets write it for each debugger, plus the variables.
func launchConfigJSON(spec Spec, t Target, name string, vars []hostenv.Var, indent, unit string) string {
	env := make([]field, 0, len(vars))
	for _, v := range vars {
		env = append(env, field{v.Name, v.Value})
	}
	rel := func(p string) string { return withMacro(spec.ProjectDir, VSCodeMacro, p) }
	cfg := []field{{"name", name}}
	switch t.Lang {
	case Go:
		program := "${fileDirname}"
		if t.Entry != "" {
			program = rel(t.Entry)
		}
		cfg = append(cfg, field{"type", "go"}, field{"request", "launch"}, field{"mode", "auto"}, field{"program", program})
	case Python:
		program := "${file}"
		if t.Entry != "" {
			program = rel(t.Entry)
		}
		cfg = append(cfg, field{"type", "debugpy"}, field{"request", "launch"}, field{"program", program}, field{"console", "integratedTerminal"})
		if t.Dir != "" {
			cfg = append(cfg, field{"cwd", rel(t.Dir)})
		}
	case Node:
		program := "${file}"
		if t.Entry != "" {
			program = rel(t.Entry)
		}
		cfg = append(cfg, field{"type", "node"}, field{"request", "launch"}, field{"program", program}, field{"skipFiles", []string{"<node_internals>/**"}})
		if t.Dir != "" {
			cfg = append(cfg, field{"cwd", rel(t.Dir)})
		}
	}
	if spec.EnvDir != "" {
		cfg = append(cfg, field{"preLaunchTask", RenewName})
	}
	cfg = append(cfg, field{"env", env}, field{"presentation", []field{{"group", Group}}})
	return renderJSON(cfg, indent, unit)
}

// usesCRLF reports whether every line of src ends in CRLF (Windows line
// endings), which what devmtls inserts must then use too.
func usesCRLF(src []byte) bool {
	n := bytes.Count(src, []byte("\r\n"))
	return n > 0 && n == bytes.Count(src, []byte("\n"))
}

// toCRLF turns every lone LF into CRLF.
func toCRLF(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

func mustParse(s string) hujson.Value {
	v, err := hujson.Parse([]byte(s))
	if err != nil {
		panic(fmt.Sprintf("ide: generated JSON does not parse: %v\n%s", err, s))
	}
	return v
}
