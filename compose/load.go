package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/consts"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/devmtls/devmtls/internal/devenv"
)

// LoadOptions are compose's own project flags, spelled as compose spells them.
type LoadOptions struct {
	// Files are the -f/--file flags, in order. Empty means COMPOSE_FILE, else
	// compose's file discovery from WorkingDir upwards.
	Files []string
	// ProjectName is -p/--project-name ("" = COMPOSE_PROJECT_NAME, the
	// top-level name:, else the project directory's name).
	ProjectName string
	// ProjectDir is --project-directory ("" = the first compose file's directory).
	ProjectDir string
	// Profiles are the --profile flags ("" = COMPOSE_PROFILES).
	Profiles []string
	// EnvFiles are the --env-file flags ("" = .env in the project directory).
	EnvFiles []string
	// WorkingDir resolves relative paths and starts file discovery; "" means
	// the process's working directory.
	WorkingDir string
	// Environ adds variables for interpolation ("KEY=value"), taking
	// precedence over the process environment. Tests use it.
	Environ []string
}

// ErrNoProject is returned by Load when no compose file was given or found.
var ErrNoProject = errors.New("no compose file found")

// Project is a loaded Compose project as devmtls sees it.
type Project struct {
	// Name is the compose project name (-p, COMPOSE_PROJECT_NAME, name:, or
	// the directory name), as compose itself computes it.
	Name string
	// Dir is the project directory: --project-directory, else the directory
	// of the first compose file.
	Dir string
	// Files are the user's compose files, absolute, in the order compose
	// merges them (including an override file found by discovery).
	Files []string
	// Profiles are the --profile flags given (not those from COMPOSE_PROFILES,
	// which the compose child reads from the environment itself).
	Profiles []string
	// EnvFiles are the --env-file flags given, absolute.
	EnvFiles []string
	// Config is the top-level x-devmtls block.
	Config Config
	// Services are the services that get credentials, sorted by name,
	// including those whose profiles are not active (so switching profiles
	// never changes the credentials).
	Services []Service
	// OptedOut are the services that get no credentials, sorted.
	OptedOut []string
	// Networks are the networks the active services join, sorted: where
	// the relays of the declared forwards answer to their names.
	Networks []string
}

// Service is one service that gets credentials.
type Service struct {
	Name string
	// Active is false when the service's profiles are not enabled.
	Active bool
	Settings
	// ComposeUser is the service's own `user:` ("" when unset).
	ComposeUser string
	// HasHostDockerInternal is true when the service already maps
	// host.docker.internal in its extra_hosts.
	HasHostDockerInternal bool
}

// Owner returns who must own the service's copies of the credential files:
// x-devmtls user, else the service's numeric `user:`, else nobody in
// particular (ok false: the files keep devmtls's own uid, which a container
// running as root reads anyway).
func (s Service) Owner() (Owner, bool) {
	if s.User != nil {
		return *s.User, true
	}
	if s.ComposeUser != "" {
		if o, err := parseOwner("", s.ComposeUser); err == nil {
			return o, true
		}
	}
	return Owner{}, false
}

// NamedUserWarning explains, when the service runs as a user name devmtls
// cannot map to a uid, how to make its key readable; "" otherwise.
func (s Service) NamedUserWarning() string {
	if s.User != nil || s.ComposeUser == "" {
		return ""
	}
	if _, err := parseOwner("", s.ComposeUser); err == nil {
		return ""
	}
	return fmt.Sprintf("service %s runs as user %q, which devmtls cannot map to a uid on the host; if it cannot read its key, set %s.user to its numeric \"uid:gid\"",
		s.Name, s.ComposeUser, Extension)
}

// Service returns the opted-in service called name.
func (p *Project) Service(name string) (*Service, error) {
	for i := range p.Services {
		if p.Services[i].Name == name {
			return &p.Services[i], nil
		}
	}
	if slices.Contains(p.OptedOut, name) {
		return nil, fmt.Errorf("service %q has %s: false, so it gets no credentials", name, Extension)
	}
	names := make([]string, len(p.Services))
	for i, s := range p.Services {
		names[i] = s.Name
	}
	return nil, fmt.Errorf("project %s has no service %q (services with credentials: %s)", p.Name, name, strings.Join(names, ", "))
}

// ServiceNames are the names of the services that get credentials.
func (p *Project) ServiceNames() []string {
	out := make([]string, len(p.Services))
	for i, s := range p.Services {
		out[i] = s.Name
	}
	return out
}

// Find loads the project like Load, but returns nil and no error when there is
// no compose file (no -f, no COMPOSE_FILE, none found by discovery), so
// commands that work with or without a project can call it.
func Find(ctx context.Context, opts LoadOptions) (*Project, error) {
	p, err := Load(ctx, opts)
	if errors.Is(err, ErrNoProject) {
		return nil, nil
	}
	return p, err
}

// Load reads the user's compose files with compose-go, the loader of Compose
// v2 itself, with the same options docker compose uses (.env and --env-file,
// COMPOSE_FILE, discovery, profiles, interpolation, extends, include), then
// reads x-devmtls.
func Load(ctx context.Context, opts LoadOptions) (*Project, error) {
	cwd := opts.WorkingDir
	if cwd == "" {
		var err error
		if cwd, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("find the working directory: %w", err)
		}
	}
	abs := func(p string) string {
		if p == "" || p == "-" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cwd, p)
	}
	const stdin = "devmtls reads the compose files more than once, so it cannot take them from stdin; write them to a file"
	if slices.Contains(opts.Files, "-") {
		return nil, fmt.Errorf("-f -: %s", stdin)
	}
	var envFiles []string
	for _, f := range opts.EnvFiles {
		envFiles = append(envFiles, abs(f))
	}
	projectDir := abs(opts.ProjectDir)

	env := devenv.Environ(os.Environ())
	maps.Copy(env, devenv.Environ(opts.Environ))
	found, err := devenv.DiscoverCompose(devenv.ComposeQuery{Files: opts.Files, ProjectDir: opts.ProjectDir, EnvFiles: opts.EnvFiles, WorkingDir: cwd, Env: env})
	if err != nil {
		return nil, err
	}
	files := found.Files
	if slices.Contains(files, "-") {
		return nil, fmt.Errorf("%s names -: %s", consts.ComposeFilePath, stdin)
	}
	if len(files) == 0 {
		from := cwd
		if projectDir != "" {
			from = projectDir
		}
		return nil, fmt.Errorf("%w in %s or its parents (looked for %s); pass -f or set COMPOSE_FILE", ErrNoProject, from, strings.Join(devenv.DefaultComposeFileNames(), ", "))
	}

	// The option chain docker compose builds (cmd/compose toProjectOptions)
	// with the files discovery found: the env files discovery read, then, as
	// compose does once it knows the files, those of the project directory.
	po := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(projectDir),
		cli.WithEnv(opts.Environ),
		cli.WithOsEnv,
	}
	if _, set := env["PWD"]; !set {
		po = append(po, cli.WithEnv([]string{"PWD=" + cwd}))
	}
	po = append(po,
		cli.WithEnvFiles(found.EnvFiles...),
		cli.WithDotEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(opts.Profiles...),
		cli.WithName(opts.ProjectName),
	)
	// Compiling compose's JSON schema costs ~30 ms per run, and the compose
	// child validates the files again anyway; so the first load skips the
	// schema, and only a project that fails to load is loaded again with it,
	// for compose's own clear message.
	load := func(validate bool) (*types.Project, error) {
		fns := slices.Clone(po)
		if !validate {
			fns = append(fns, cli.WithLoadOptions(loader.WithSkipValidation))
		}
		o, err := cli.NewProjectOptions(files, fns...)
		if err != nil {
			return nil, err
		}
		return o.LoadProject(ctx)
	}
	tp, err := load(false)
	if err != nil {
		if _, verr := load(true); verr != nil {
			err = verr
		}
		return nil, err
	}
	p := &Project{Name: tp.Name, Dir: tp.WorkingDir, Files: slices.Clone(tp.ComposeFiles), Profiles: slices.Clone(opts.Profiles), EnvFiles: envFiles}
	sources := newSourceFiles(cwd, p.Files)
	if err := p.readExtension(tp, sources); err != nil {
		return nil, err
	}
	return p, nil
}

// readExtension reads the top-level and per-service x-devmtls of the loaded
// (merged, interpolated) project. Errors name the file the field came from.
func (p *Project) readExtension(tp *types.Project, sources *sourceFiles) error {
	cfg, err := parseConfig(tp.Extensions[Extension])
	if err != nil {
		return sources.attribute(err)
	}
	resolveCreds(cfg.Forwards, p.Dir)
	p.Config = cfg
	if len(tp.Services) == 0 && len(tp.DisabledServices) == 0 {
		if f := legacyFormat(p.Files, sources.raw); f != "" {
			return &LegacyFormatError{File: sources.display(f)}
		}
	}
	all := map[string]types.ServiceConfig{}
	active := map[string]bool{}
	for name, s := range tp.Services {
		all[name], active[name] = s, true
	}
	for name, s := range tp.DisabledServices {
		all[name] = s
	}
	names := slices.Sorted(maps.Keys(all))
	if err := p.checkForwardNames(names); err != nil {
		return sources.attribute(err)
	}
	if err := p.checkRelayNames(names); err != nil {
		return sources.attribute(err)
	}
	p.Networks = projectNetworks(tp)
	for _, name := range names {
		s := all[name]
		raw, has := s.Extensions[Extension]
		sc := serviceConfig{}
		if has {
			if sc, err = parseServiceConfig(name, raw); err != nil {
				return sources.attribute(err)
			}
		}
		if (sc.set && !sc.enabled) || (!sc.set && !cfg.Enabled) {
			p.OptedOut = append(p.OptedOut, name)
			continue
		}
		settings, err := resolveSettings(name, cfg, sc)
		if err != nil {
			return sources.attribute(err)
		}
		_, hasHDI := s.ExtraHosts["host.docker.internal"]
		p.Services = append(p.Services, Service{Name: name, Active: active[name], Settings: settings, ComposeUser: s.User, HasHostDockerInternal: hasHDI})
	}
	return nil
}
