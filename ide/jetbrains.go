package ide

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

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

// RenewConfigPath is the file of the Shell Script run configuration devmtls's
// configurations run before each launch (RenewName).
func RenewConfigPath(projectDir string) string {
	return filepath.Join(projectDir, ".run", "devmtls-certs.run.xml")
}

// WriteJetBrains writes or updates one run configuration file per target and,
// with Spec.EnvDir, the renewal configuration they run before each launch.
// Other files in .run are never touched, and a file of that name that is not
// devmtls's configuration is refused.
func WriteJetBrains(spec Spec) ([]Result, error) {
	var results []Result
	for _, t := range spec.Targets {
		res, err := writeXMLFile(RunConfigPath(spec.ProjectDir, spec.Service, t.Lang), ConfigName(t.Lang, spec.Service),
			func(src []byte) ([]byte, bool, error) { return MergeRunConfig(src, spec, t) })
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	if spec.EnvDir != "" {
		res, err := writeXMLFile(RenewConfigPath(spec.ProjectDir), RenewName,
			func(src []byte) ([]byte, bool, error) { return MergeRenewConfig(src, spec) })
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// writeXMLFile merges the configuration name into the run configuration file
// path, writing it atomically when its content changes.
func writeXMLFile(path, name string, merge func(src []byte) ([]byte, bool, error)) (Result, error) {
	res := Result{Path: path}
	src, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.Created = true
	case err != nil:
		return res, fmt.Errorf("read %s: %w", path, err)
	}
	out, changed, err := merge(src)
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case res.Created:
		res.Added = []string{name}
	case changed:
		res.Updated = []string{name}
	}
	if res.Created || !bytes.Equal(out, src) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return res, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		if err := atomicfile.WriteFile(path, out, 0o644); err != nil {
			return res, err
		}
		res.Changed = true
	}
	return res, nil
}

// MergeRunConfig returns the run configuration file src (empty for a new one)
// for target t with spec's variables in its <envs>: devmtls's set, stale ones
// removed, the user's own kept, every other setting as it was; with
// Spec.EnvDir, the renewal configuration is among its before-launch steps.
// changed reports whether any of that changed.
func MergeRunConfig(src []byte, spec Spec, t Target) (out []byte, changed bool, err error) {
	name := ConfigName(t.Lang, spec.Service)
	doc, cfg, err := openRunConfig(src, name, func() *xnode { return newRunConfig(spec, t, name) })
	if err != nil {
		return nil, false, err
	}
	changed, err = mergeEnvs(cfg, spec)
	if err != nil {
		return nil, false, err
	}
	changed = addBeforeLaunch(cfg, spec) || changed
	return renderXML(doc), changed, nil
}

// openRunConfig parses a run configuration file (fresh makes a new one) and
// finds devmtls's configuration name in it.
func openRunConfig(src []byte, name string, fresh func() *xnode) ([]*xnode, *xnode, error) {
	var doc []*xnode
	if len(bytes.TrimSpace(src)) == 0 {
		doc = []*xnode{fresh()}
	} else {
		var err error
		doc, err = parseXML(src)
		if err != nil {
			return nil, nil, fmt.Errorf("not a valid XML file (%v); fix it or move it aside", err)
		}
	}
	root := rootElement(doc)
	if root.name == "component" {
		for _, c := range root.children {
			if n, _ := c.attr("name"); c.kind == xElement && c.name == "configuration" && n == name {
				return doc, c, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("not devmtls's run configuration (it has no <configuration name=%q>); rename or remove the file", name)
}

// addBeforeLaunch makes the renewal configuration a before-launch step of
// cfg: a RunConfigurationTask (JetBrains's "Run Another Configuration"),
// which needs nothing set up in the IDE, unlike an External Tool
// (ToolBeforeRunTask), which lives in each user's IDE settings. A step naming
// it that is there already stays as it is, even disabled: the user's choice.
func addBeforeLaunch(cfg *xnode, spec Spec) bool {
	if spec.EnvDir == "" {
		return false
	}
	method := cfg.child("method")
	if method == nil {
		method = elem("method", "v", "2")
		cfg.children = append(cfg.children, method)
	}
	for _, c := range method.children {
		if n, _ := c.attr("name"); c.kind == xElement && c.name == "option" && n == "RunConfigurationTask" {
			if target, _ := c.attr("run_configuration_name"); target == RenewName {
				return false
			}
		}
	}
	method.children = append(method.children, elem("option", "name", "RunConfigurationTask", "enabled", "true",
		"run_configuration_name", RenewName, "run_configuration_type", renewConfigType))
	return true
}

// renewConfigType is JetBrains's Shell Script run configuration type, bundled
// with every JetBrains IDE.
const renewConfigType = "ShConfigurationType"

// MergeRenewConfig returns the renewal run configuration file src (empty for
// a new one): a Shell Script configuration that runs `devmtls --dir ENV certs`
// in the project directory, as a process the IDE waits for (not in its
// terminal) before it launches the configuration that names it. In a file
// that exists only the command changes, following the environment directory.
func MergeRenewConfig(src []byte, spec Spec) (out []byte, changed bool, err error) {
	if spec.EnvDir == "" {
		return nil, false, errors.New("ide: the renewal configuration needs Spec.EnvDir")
	}
	doc, cfg, err := openRunConfig(src, RenewName, func() *xnode { return newRenewConfig(spec) })
	if err != nil {
		return nil, false, err
	}
	for _, c := range cfg.children {
		if n, _ := c.attr("name"); c.kind == xElement && c.name == "option" && n == "SCRIPT_TEXT" {
			changed = c.setAttr("value", RenewScript(spec))
		}
	}
	return renderXML(doc), changed, nil
}

// RenewScript is the renewal command line of the JetBrains configuration. It
// runs in the project directory, so an environment inside the project is
// named relative to it.
func RenewScript(spec Spec) string {
	dir := spec.EnvDir
	if rel, ok := projectRel(spec.ProjectDir, spec.EnvDir); ok {
		dir = rel
	}
	return "devmtls --dir " + shellQuote(dir) + " certs"
}

// shellQuote quotes s for the shell when it needs it: single quotes, which
// POSIX shells and PowerShell read alike (a quote inside is written the POSIX
// way).
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(`/._-+:@\`, r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// newRenewConfig is the renewal configuration as the IDE writes a Shell
// Script configuration that runs a script text. The interpreter is the one
// of the system writing it: /bin/sh, or PowerShell on Windows.
func newRenewConfig(spec Spec) *xnode {
	interpreter := renewInterpreter
	opt := func(k, v string) *xnode { return elem("option", "name", k, "value", v) }
	cfg := elem("configuration", "default", "false", "name", RenewName, "type", renewConfigType, "factoryName", "Shell Script", "folderName", Group)
	cfg.children = []*xnode{opt("SCRIPT_TEXT", RenewScript(spec)), opt("INDEPENDENT_SCRIPT_PATH", "true"), opt("SCRIPT_PATH", ""),
		opt("SCRIPT_OPTIONS", ""), opt("INDEPENDENT_SCRIPT_WORKING_DIRECTORY", "true"), opt("SCRIPT_WORKING_DIRECTORY", JetBrainsMacro),
		opt("INDEPENDENT_INTERPRETER_PATH", "true"), opt("INTERPRETER_PATH", interpreter), opt("INTERPRETER_OPTIONS", ""),
		opt("EXECUTE_IN_TERMINAL", "false"), opt("EXECUTE_SCRIPT_FILE", "false"), elem("envs"), elem("method", "v", "2")}
	root := elem("component", "name", "ProjectRunConfigurationManager")
	root.children = []*xnode{cfg}
	return root
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
