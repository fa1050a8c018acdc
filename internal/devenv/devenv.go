// Package devenv locates a developer's environment: the directory that holds
// its dev credentials and, when there is one, the Compose project it belongs to.
package devenv

import "path/filepath"

// DirName is the environment directory's name inside a project.
const DirName = ".devmtls"

// EnvDir is the environment variable that overrides the environment directory,
// like the global --dir flag.
const EnvDir = "DEVMTLS_DIR"

// Lookup reads an environment variable; tests pass a map-backed one.
type Lookup func(key string) (string, bool)

// ResolveDir picks the environment directory of a command that names no
// compose file: the --dir flag, else $DEVMTLS_DIR, else .devmtls in the
// directory of the Compose project compose would find from cwd (COMPOSE_FILE
// in the environment or .env included), else .devmtls in cwd. The result is
// absolute. It fails only where compose would: a COMPOSE_FILE naming no file,
// an env file that cannot be read.
func ResolveDir(flagDir, cwd string, env Env) (string, error) {
	projectDir := ""
	if flagDir == "" && env[EnvDir] == "" {
		found, err := DiscoverCompose(ComposeQuery{WorkingDir: cwd, Env: env})
		if err != nil {
			return "", err
		}
		projectDir = found.Dir
	}
	return ResolveDirForProject(flagDir, cwd, env.Lookup, projectDir), nil
}

// ResolveDirForProject is ResolveDir for a command that already knows its
// Compose project directory (from -f, --project-directory or the loaded
// project); projectDir "" means there is no project.
func ResolveDirForProject(flagDir, cwd string, env Lookup, projectDir string) string {
	dir := flagDir
	if dir == "" {
		dir, _ = env(EnvDir)
	}
	if dir == "" {
		base := cwd
		if projectDir != "" {
			base = projectDir
		}
		dir = filepath.Join(base, DirName)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dir)
	}
	return filepath.Clean(dir)
}
