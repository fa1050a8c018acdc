package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/devmtls/devmtls/hostenv"
	"github.com/devmtls/devmtls/ide"
	"github.com/devmtls/devmtls/internal/devenv"
	"github.com/spf13/cobra"
)

// ideOptions backs `devmtls ide vscode` and `devmtls ide jetbrains`.
type ideOptions struct {
	g          *globalOptions
	host       hostFlags
	langs      []string
	projectDir string
	jetbrains  bool

	spec ide.Spec
}

func newIDECmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ide vscode|jetbrains",
		Short: "Write IDE run configurations with the variables set",
		Long: `Write run configurations for Go, Python and Node.js that start the program
with the variables 'devmtls env' prints, so a service run or debugged from the
IDE keeps mTLS on.

The files go into the project directory: --project-directory, else the
Compose project directory (where compose.yaml is found, as docker compose
finds it), else the current directory. Paths inside it are written as
${workspaceFolder}/… (VS Code) or $PROJECT_DIR$/… (JetBrains), so the files
can be committed and work on every teammate's machine once they run
'devmtls certs' (or any devmtls command) to create their own credentials.

Languages: those detected in the project directory and up to three levels
below it (go.mod; package.json; pyproject.toml, requirements.txt, setup.py,
Pipfile, main.py, app.py…), or --lang. The entry point is detected too (the
main package, package.json's "main", app.py…); VS Code falls back to the file
open in the editor.

Every configuration brings the credentials up to date before each launch, by
running 'devmtls --dir .devmtls certs' (devmtls must be on the IDE's PATH): a
VS Code preLaunchTask backed by the task "devmtls: certs" in
.vscode/tasks.json, a JetBrains before-launch step running the Shell Script
configuration "devmtls: certs" (.run/devmtls-certs.run.xml). So a service
started from the IDE a month later never gets expired credentials.

Running it again updates the variables of devmtls's configurations in place
and changes nothing else: your own configurations and tasks, comments and
edits to devmtls's configurations (program, arguments, your own variables, a
preLaunchTask of your own) stay.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("name the IDE: devmtls ide vscode, or devmtls ide jetbrains")
			}
			return usageErrorf("unknown IDE %q: use vscode or jetbrains%s (see '%s --help')", args[0], suggest(c, args[0]), c.CommandPath())
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newIDESubCmd(g, false), newIDESubCmd(g, true))
	return cmd
}

func newIDESubCmd(g *globalOptions, jetbrains bool) *cobra.Command {
	o := &ideOptions{g: g, jetbrains: jetbrains}
	cmd := &cobra.Command{
		Use:   "vscode",
		Short: "Add or update VS Code launch configurations",
		Long: `Add launch configurations named "devmtls: Go", "devmtls: Python" and
"devmtls: Node.js" (debuggers go, debugpy and node) to .vscode/launch.json,
grouped under "devmtls", each carrying the variables in "env" and the
preLaunchTask "devmtls: certs", which .vscode/tasks.json defines (it runs
devmtls certs to create or renew the credentials). Both files keep their
comments, trailing commas, indentation and your configurations and tasks.
See 'devmtls ide --help' for where the file goes and which languages are used.`,
		Example: `  devmtls ide vscode
  devmtls ide vscode --service orders --postgres
  devmtls ide vscode --lang go,python`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(c); err != nil {
				return err
			}
			return o.Run()
		},
	}
	if jetbrains {
		cmd.Use = "jetbrains"
		cmd.Aliases = []string{"idea", "goland", "pycharm", "webstorm"}
		cmd.Short = "Write run configurations for JetBrains IDEs"
		cmd.Long = `Write one run configuration per language to .run/devmtls-go.run.xml,
devmtls-python.run.xml and devmtls-node.run.xml (devmtls-SERVICE-LANG.run.xml
with --service), in the "devmtls" folder, with the variables as <envs> and a
before-launch step that runs the Shell Script configuration "devmtls: certs"
(.run/devmtls-certs.run.xml, devmtls certs: create or renew the credentials).
GoLand, PyCharm, WebStorm and IntelliJ IDEA pick them up as project run
configurations. Other files in .run are never touched.
See 'devmtls ide --help' for where the files go and which languages are used.`
		cmd.Example = `  devmtls ide jetbrains
  devmtls ide jetbrains --service orders --lang python`
	}
	cmd.Flags().StringSliceVar(&o.langs, "lang", nil, "languages to write configurations for: go, python, node (comma-separated or repeated); default: those detected in the project")
	cmd.Flags().StringVar(&o.projectDir, "project-directory", "", "the directory the IDE opens; default: the Compose project directory, else the current directory")
	o.host.add(cmd)
	return cmd
}

func (o *ideOptions) Complete(cmd *cobra.Command) error {
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("find the working directory: %w", err)
	}
	dir := o.projectDir
	switch {
	case dir != "":
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return usageErrorf("--project-directory: %s is not a directory", dir)
		}
	default:
		found, err := devenv.DiscoverCompose(devenv.ComposeQuery{WorkingDir: cwd, Env: devenv.Environ(os.Environ())})
		if err != nil {
			return err
		}
		dir = cmp.Or(found.Dir, cwd)
	}
	dir = filepath.Clean(dir)

	var targets []ide.Target
	if len(o.langs) > 0 {
		detected := map[ide.Lang]ide.Target{}
		for _, t := range ide.Detect(dir) {
			detected[t.Lang] = t
		}
		seen := map[ide.Lang]bool{}
		for _, s := range o.langs {
			l, err := ide.ParseLang(s)
			if err != nil {
				return usageErrorf("--lang: %v", err)
			}
			if !seen[l] {
				seen[l] = true
				t, ok := detected[l]
				if !ok {
					t = ide.Target{Lang: l}
				}
				targets = append(targets, t)
			}
		}
	} else {
		targets = ide.Detect(dir)
		if len(targets) == 0 {
			return fmt.Errorf("found no Go, Python or Node.js project in %s (no go.mod, package.json, pyproject.toml, requirements.txt…); name the languages with --lang go,python,node", dir)
		}
	}

	in, vars, err := hostVars(cmd.Context(), o.g, o.host)
	if err != nil {
		return err
	}
	// The trust anchor lies at the top of the environment directory whatever
	// the identity, so its directory is the one to renew.
	o.spec = ide.Spec{ProjectDir: dir, Service: o.host.service, Vars: vars, Known: hostenv.KnownNames(in.Names), Targets: targets,
		EnvDir: filepath.Dir(in.Files.CA)}
	return nil
}

func (o *ideOptions) Run() error {
	var results []ide.Result
	if o.jetbrains {
		rs, err := ide.WriteJetBrains(o.spec)
		if err != nil {
			return err
		}
		results = rs
	} else {
		rs, err := ide.WriteVSCode(o.spec)
		if err != nil {
			return err
		}
		results = rs
	}
	w := o.g.stdout
	for _, r := range results {
		rel := r.Path
		if p, err := filepath.Rel(o.spec.ProjectDir, r.Path); err == nil {
			rel = p
		}
		var what []string
		if len(r.Added) > 0 {
			what = append(what, "added "+quoteList(r.Added))
		}
		if len(r.Updated) > 0 {
			what = append(what, "updated the variables of "+quoteList(r.Updated))
		}
		switch {
		case !r.Changed:
			fmt.Fprintf(w, "%s is up to date\n", rel)
		case r.Created:
			fmt.Fprintf(w, "Created %s: %s\n", rel, strings.Join(what, "; "))
		default:
			fmt.Fprintf(w, "Updated %s: %s\n", rel, strings.Join(what, "; "))
		}
	}
	fmt.Fprintf(w, "Variables: %s\n", varNames(o.spec.Vars))
	return nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func varNames(vars []hostenv.Var) string {
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}
