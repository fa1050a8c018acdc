package ide

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/devmtls/devmtls/internal/atomicfile"
)

// JetBrainsMacro is what JetBrains IDEs substitute with the project directory
// in run configuration files.
const JetBrainsMacro = "$PROJECT_DIR$"

// RunConfigPath is the file devmtls keeps the JetBrains run configuration for
// t in: .run/devmtls-[SERVICE-]LANG.run.xml, which the IDE picks up as a
// shared ("Store as project file") configuration.
func RunConfigPath(projectDir, service string, lang Lang) string {
	name := "devmtls-" + string(lang)
	if service != "" {
		name = "devmtls-" + service + "-" + string(lang)
	}
	return filepath.Join(projectDir, ".run", name+".run.xml")
}

// WriteJetBrains writes or updates one run configuration file per target.
// Other files in .run are never touched, and a file of that name that is not
// devmtls's configuration is refused.
func WriteJetBrains(spec Spec) ([]Result, error) {
	var results []Result
	for _, t := range spec.Targets {
		path := RunConfigPath(spec.ProjectDir, spec.Service, t.Lang)
		res := Result{Path: path}
		src, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			res.Created = true
		case err != nil:
			return results, fmt.Errorf("read %s: %w", path, err)
		}
		out, changed, err := MergeRunConfig(src, spec, t)
		if err != nil {
			return results, fmt.Errorf("%s: %w", path, err)
		}
		name := ConfigName(t.Lang, spec.Service)
		switch {
		case res.Created:
			res.Added = []string{name}
		case changed:
			res.Updated = []string{name}
		}
		if res.Created || !bytes.Equal(out, src) {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return results, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
			}
			if err := atomicfile.WriteFile(path, out, 0o644); err != nil {
				return results, err
			}
			res.Changed = true
		}
		results = append(results, res)
	}
	return results, nil
}

// MergeRunConfig returns the run configuration file src (empty for a new one)
// for target t with spec's variables in its <envs>: devmtls's set, stale ones
// removed, the user's own kept, every other setting as it was. changed
// reports whether any variable changed.
func MergeRunConfig(src []byte, spec Spec, t Target) (out []byte, changed bool, err error) {
	name := ConfigName(t.Lang, spec.Service)
	var doc []*xnode
	if len(bytes.TrimSpace(src)) == 0 {
		doc = []*xnode{newRunConfig(spec, t, name)}
	} else {
		doc, err = parseXML(src)
		if err != nil {
			return nil, false, fmt.Errorf("not a valid XML file (%v); fix it or move it aside", err)
		}
	}
	root := rootElement(doc)
	var cfg *xnode
	if root.name == "component" {
		for _, c := range root.children {
			if n, _ := c.attr("name"); c.kind == xElement && c.name == "configuration" && n == name {
				cfg = c
				break
			}
		}
	}
	if cfg == nil {
		return nil, false, fmt.Errorf("not devmtls's run configuration (it has no <configuration name=%q>); rename or remove the file", name)
	}
	changed, err = mergeEnvs(cfg, spec)
	if err != nil {
		return nil, false, err
	}
	return renderXML(doc), changed, nil
}

// mergeEnvs sets spec's variables in cfg's <envs>, creating it before
// <method> (where the IDE puts it) when missing.
func mergeEnvs(cfg *xnode, spec Spec) (bool, error) {
	vars := values(spec, JetBrainsMacro)
	for _, v := range vars {
		if !validXMLString(v.Value) {
			return false, fmt.Errorf("the value of %s (%q) cannot be written in XML", v.Name, v.Value)
		}
	}
	envs := cfg.child("envs")
	changed := false
	if envs == nil {
		envs = elem("envs")
		at := len(cfg.children)
		for i, c := range cfg.children {
			if c.kind == xElement && c.name == "method" {
				at = i
				break
			}
		}
		cfg.children = slices.Insert(cfg.children, at, envs)
		changed = true
	}
	for _, v := range vars {
		var env *xnode
		for _, c := range envs.children {
			if n, _ := c.attr("name"); c.kind == xElement && c.name == "env" && n == v.Name {
				env = c
				break
			}
		}
		if env == nil {
			envs.children = append(envs.children, elem("env", "name", v.Name, "value", v.Value))
			changed = true
			continue
		}
		changed = env.setAttr("value", v.Value) || changed
	}
	kept := envs.children[:0]
	for _, c := range envs.children {
		if n, _ := c.attr("name"); c.kind == xElement && c.name == "env" && stale(spec, n) {
			changed = true
			continue
		}
		kept = append(kept, c)
	}
	envs.children = kept
	return changed, nil
}

// newRunConfig is a run configuration as the IDE writes it for t's language.
func newRunConfig(spec Spec, t Target, name string) *xnode {
	rel := func(p string) string { return withMacro(spec.ProjectDir, JetBrainsMacro, p) }
	workDir := JetBrainsMacro
	if t.Dir != "" {
		workDir = rel(t.Dir)
	}
	module := elem("module", "name", filepath.Base(spec.ProjectDir))
	method := elem("method", "v", "2")
	var cfg *xnode
	switch t.Lang {
	case Go:
		dir := workDir
		if t.Entry != "" {
			dir = rel(t.Entry)
		}
		cfg = elem("configuration", "default", "false", "name", name, "type", "GoApplicationRunConfiguration", "factoryName", "Go Application", "folderName", Group)
		cfg.children = []*xnode{module, elem("working_directory", "value", workDir), elem("envs"),
			elem("kind", "value", "DIRECTORY"), elem("directory", "value", dir), elem("filePath", "value", JetBrainsMacro), method}
	case Python:
		script := ""
		if t.Entry != "" {
			script = rel(t.Entry)
		}
		cfg = elem("configuration", "default", "false", "name", name, "type", "PythonConfigurationType", "factoryName", "Python", "folderName", Group)
		opt := func(k, v string) *xnode { return elem("option", "name", k, "value", v) }
		cfg.children = []*xnode{module, opt("ENV_FILES", ""), opt("INTERPRETER_OPTIONS", ""), opt("PARENT_ENVS", "true"), elem("envs"),
			opt("SDK_HOME", ""), opt("WORKING_DIRECTORY", workDir), opt("IS_MODULE_SDK", "true"), opt("ADD_CONTENT_ROOTS", "true"),
			opt("ADD_SOURCE_ROOTS", "true"), opt("SCRIPT_NAME", script), opt("PARAMETERS", ""), opt("SHOW_COMMAND_LINE", "false"),
			opt("EMULATE_TERMINAL", "false"), opt("MODULE_MODE", "false"), opt("REDIRECT_INPUT", "false"), opt("INPUT_FILE", ""), method}
	case Node:
		script := ""
		if t.Entry != "" {
			script = rel(t.Entry)
		}
		cfg = elem("configuration", "default", "false", "name", name, "type", "NodeJSConfigurationType", "folderName", Group,
			"path-to-js-file", script, "working-dir", workDir)
		cfg.children = []*xnode{elem("envs"), method}
	}
	root := elem("component", "name", "ProjectRunConfigurationManager")
	root.children = []*xnode{cfg}
	return root
}
