package devenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/consts"
	"github.com/compose-spec/compose-go/v2/dotenv"
)

// This file finds a Compose project's files the way `docker compose` does,
// before any of them is read: compose's toProjectOptions chain (docker/compose
// cmd/compose) over compose-go's cli options WithEnvFiles, WithDotEnv,
// WithConfigFileEnv and WithDefaultConfigPath. It is written out here because
// compose-go's cli package imports its loader and JSON schema, which the
// commands that only need the directory (env, exec, certs, forward) should
// not pay for; discover_test.go checks it against compose-go case by case.
// compose.Load uses it too, so every command finds the same project.

// DefaultComposeFileNames are the files compose looks for, in its order of
// preference, in the working directory and then each parent.
func DefaultComposeFileNames() []string {
	return []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"}
}

// DefaultOverrideFileNames are the override files compose adds from the
// directory where it found the compose file, the first that exists.
func DefaultOverrideFileNames() []string {
	return []string{"compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml"}
}

// Env is an environment as compose reads it: a variable set to "" is set.
type Env map[string]string

// Environ makes an Env of KEY=value entries, as os.Environ returns them; a
// later entry wins.
func Environ(kv []string) Env {
	env := Env{}
	for _, e := range kv {
		if k, v, ok := strings.Cut(e, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// Lookup reads one variable of e.
func (e Env) Lookup(key string) (string, bool) {
	v, ok := e[key]
	return v, ok
}

// ComposeQuery is what decides which compose files a command uses: compose's
// project flags and the process's surroundings.
type ComposeQuery struct {
	// Files are the -f flags ("-" is stdin). Empty means COMPOSE_FILE, else
	// the default names from ProjectDir (or WorkingDir) upwards.
	Files []string
	// ProjectDir is --project-directory.
	ProjectDir string
	// EnvFiles are the --env-file flags. Empty means .env in ProjectDir (or
	// WorkingDir), unless COMPOSE_DISABLE_ENV_FILE is true.
	EnvFiles []string
	// WorkingDir is the process's working directory, absolute; relative
	// flags and COMPOSE_FILE entries are resolved against it, as compose
	// resolves them against its own.
	WorkingDir string
	// Env is the process environment. Variables of the env files are added
	// to it for discovery, never replacing one that is set.
	Env Env
}

// ComposeFiles is what discovery found.
type ComposeFiles struct {
	// Files are the compose files in merge order, absolute (or "-"); empty
	// when there is no project.
	Files []string
	// Dir is the project directory: --project-directory, else the first
	// file's directory; "" without files or project directory.
	Dir string
	// EnvFiles are the env files whose variables discovery used: the
	// --env-file flags, else WorkingDir's (or --project-directory's) .env if
	// there is one. Compose reads them, and then the project directory's .env,
	// for interpolation.
	EnvFiles []string
}

// DiscoverCompose finds the compose files as compose does: the -f flags;
// else a non-empty COMPOSE_FILE, from the environment or the env files, split at
// COMPOSE_PATH_SEPARATOR (default: the system's list separator), each entry
// an existing regular file; else the first of DefaultComposeFileNames in the
// project directory (--project-directory, else the working directory) or the
// nearest parent holding one, with the first of DefaultOverrideFileNames
// beside it. No file at all is no error: Files is empty.
func DiscoverCompose(q ComposeQuery) (ComposeFiles, error) {
	abs := func(p string) string {
		if p == "-" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(q.WorkingDir, p)
	}
	var out ComposeFiles
	projectDir := ""
	if q.ProjectDir != "" {
		projectDir = abs(q.ProjectDir)
	}
	for _, f := range q.Files {
		out.Files = append(out.Files, abs(f))
	}
	// The directory compose takes its default .env from before it knows the
	// files: --project-directory, else the first -f file's, else cwd.
	dir := q.WorkingDir
	switch {
	case projectDir != "":
		dir = projectDir
	case len(out.Files) > 0 && out.Files[0] != "-":
		dir = filepath.Dir(out.Files[0])
	}
	var err error
	if out.EnvFiles, err = envFiles(q, dir, abs); err != nil {
		return ComposeFiles{}, err
	}
	env := Env{}
	for k, v := range q.Env {
		env[k] = v
	}
	vars, err := dotenv.GetEnvFromFile(env, out.EnvFiles)
	if err != nil {
		return ComposeFiles{}, err
	}
	for k, v := range vars {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	if len(out.Files) == 0 {
		// An empty COMPOSE_FILE counts as unset, as docker-compose v1 reads
		// it; Compose v2 refuses it, but only when it has no -f, and devmtls
		// always gives its compose the files.
		if list := env[consts.ComposeFilePath]; list != "" {
			if out.Files, err = composeFileEnv(list, env[consts.ComposePathSeparator], abs); err != nil {
				return ComposeFiles{}, err
			}
		} else {
			out.Files = findDefault(dir)
		}
	}
	switch {
	case projectDir != "":
		out.Dir = projectDir
	case len(out.Files) > 0 && out.Files[0] != "-":
		out.Dir = filepath.Dir(out.Files[0])
	case len(out.Files) > 0:
		out.Dir = q.WorkingDir
	}
	return out, nil
}

// envFiles are the --env-file flags, else dir's .env when it exists and
// COMPOSE_DISABLE_ENV_FILE does not say otherwise (compose-go's
// WithEnvFiles).
func envFiles(q ComposeQuery, dir string, abs func(string) string) ([]string, error) {
	if len(q.EnvFiles) > 0 {
		out := make([]string, len(q.EnvFiles))
		for i, f := range q.EnvFiles {
			out[i] = abs(f)
		}
		return out, nil
	}
	if v, ok := q.Env[consts.ComposeDisableDefaultEnvFile]; ok {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", consts.ComposeDisableDefaultEnvFile, v, err)
		}
		if disabled {
			return nil, nil
		}
	}
	dotEnv := filepath.Join(dir, ".env")
	fi, err := os.Stat(dotEnv)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		// An implicit convenience, not something the user asked for.
		return nil, nil
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, nil
	}
	return []string{dotEnv}, nil
}

// composeFileEnv splits COMPOSE_FILE; every entry must be a regular file
// (compose-go's WithConfigFileEnv).
func composeFileEnv(list, sep string, abs func(string) string) ([]string, error) {
	if sep == "" {
		sep = string(os.PathListSeparator)
	}
	var out []string
	for _, entry := range strings.Split(list, sep) {
		p := abs(entry)
		if p != "-" {
			fi, err := os.Stat(p)
			switch {
			case err != nil:
			case fi.IsDir():
				err = fmt.Errorf("%s is a directory", p)
			case !fi.Mode().IsRegular():
				err = fmt.Errorf("%s is not a regular file", p)
			}
			if err != nil {
				return nil, fmt.Errorf("compose file %q set by %s environment variable is invalid: %w", entry, consts.ComposeFilePath, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// findDefault looks for the default names in dir and then each parent
// (compose-go's WithDefaultConfigPath): the first name present wins, and the
// first override file beside it is added.
func findDefault(dir string) []string {
	for {
		if f := firstPresent(dir, DefaultComposeFileNames()); f != "" {
			out := []string{f}
			if o := firstPresent(dir, DefaultOverrideFileNames()); o != "" {
				out = append(out, o)
			}
			return out
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// firstPresent returns the first of names that exists in dir. Like compose,
// it asks only whether the name exists.
func firstPresent(dir string, names []string) string {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
