// Package devenv locates a developer's environment: the directory that holds
// its dev credentials and, when there is one, the Compose project it belongs to.
package devenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// DirName is the environment directory's name inside a project.
const DirName = ".devmtls"

// EnvDir is the environment variable that overrides the environment directory,
// like the global --dir flag.
const EnvDir = "DEVMTLS_DIR"

// ComposeFileNames are the files `docker compose` looks for, in its order of
// preference, in the working directory and then each parent.
func ComposeFileNames() []string {
	return []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"}
}

// Lookup reads an environment variable; tests pass a map-backed one.
type Lookup func(key string) (string, bool)

// FindProjectDir finds the Compose project directory the way compose does: the
// directory of the first file in COMPOSE_FILE when set, else the nearest
// directory, from cwd upwards, that holds a compose file. ok is false when
// there is no project.
func FindProjectDir(cwd string, env Lookup) (dir string, ok bool) {
	if files, set := env("COMPOSE_FILE"); set && files != "" {
		sep, _ := env("COMPOSE_PATH_SEPARATOR")
		if sep == "" {
			sep = string(os.PathListSeparator)
			if runtime.GOOS == "windows" {
				sep = ";"
			}
		}
		first := strings.Split(files, sep)[0]
		if !filepath.IsAbs(first) {
			first = filepath.Join(cwd, first)
		}
		return filepath.Dir(first), true
	}
	for d := cwd; ; {
		for _, name := range ComposeFileNames() {
			if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() {
				return d, true
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

// ResolveDir picks the environment directory: the --dir flag, else
// $DEVMTLS_DIR, else .devmtls in the Compose project directory, else .devmtls
// in cwd. The result is absolute.
func ResolveDir(flagDir, cwd string, env Lookup) string {
	projectDir, _ := FindProjectDir(cwd, env)
	return ResolveDirForProject(flagDir, cwd, env, projectDir)
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
