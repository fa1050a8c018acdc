package devenv

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/sirupsen/logrus"
)

const validCompose = "services:\n  app:\n    image: x\n"

// composeEnv are the variables that steer compose's discovery; each case
// starts with none of them set.
var composeEnv = []string{"COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR", "COMPOSE_DISABLE_ENV_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", EnvDir}

func unsetenv(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if v, ok := os.LookupEnv(k); ok {
			t.Setenv(k, v) // restores it when the test ends
			os.Unsetenv(k)
		}
	}
}

// composeGoFinds runs the chain docker compose builds (docker/compose v5
// cmd/compose toProjectOptions) and returns the files it selects and the
// project directory, then loads the project with compose-go's loader and
// checks it reads the same files from the same directory.
func composeGoFinds(t *testing.T, q ComposeQuery) (files []string, dir string, err error) {
	t.Helper()
	o, err := cli.NewProjectOptions(q.Files,
		cli.WithWorkingDirectory(q.ProjectDir),
		cli.WithOsEnv,
		cli.WithEnvFiles(q.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(q.EnvFiles...),
		cli.WithDotEnv,
		cli.WithLoadOptions(loader.WithSkipValidation),
	)
	if err != nil {
		return nil, "", err
	}
	if len(o.ConfigPaths) == 0 {
		return nil, "", nil
	}
	for _, f := range o.ConfigPaths {
		abs, err := filepath.Abs(f) // -f flags stay as typed until the loader reads them
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	if dir, err = o.GetWorkingDir(); err != nil {
		return nil, "", err
	}
	p, err := o.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go's loader: %v", err)
	}
	if !slices.Equal(p.ComposeFiles, files) || p.WorkingDir != dir {
		t.Fatalf("compose-go's loader read %v in %s; its options said %v in %s", p.ComposeFiles, p.WorkingDir, files, dir)
	}
	return files, dir, nil
}

// TestDiscoverComposeAgreesWithComposeGo: for each case the files and the
// project directory are those compose-go selects and loads, and where
// compose-go refuses, so does DiscoverCompose.
func TestDiscoverComposeAgreesWithComposeGo(t *testing.T) {
	// compose-go warns through logrus about several files in one directory.
	logrus.SetLevel(logrus.ErrorLevel)
	for _, tc := range []struct {
		name  string
		files map[string]string // relative to the case's root
		cwd   string
		env   map[string]string
		q     ComposeQuery // the flags, as typed
		want  []string     // the files, relative to the root; nil: none
		fails bool
		// deviates: compose-go refuses what DiscoverCompose accepts, on purpose.
		deviates bool
	}{
		{name: "in the working directory", files: map[string]string{"compose.yaml": validCompose},
			want: []string{"compose.yaml"}},
		{name: "in a parent, with its override", files: map[string]string{"compose.yaml": validCompose, "compose.override.yml": validCompose, "sub/deep/.keep": ""},
			cwd: "sub/deep", want: []string{"compose.yaml", "compose.override.yml"}},
		{name: "the first name in compose's order", files: map[string]string{"docker-compose.yml": validCompose, "compose.yml": validCompose},
			want: []string{"compose.yml"}},
		{name: "COMPOSE_FILE in the environment", files: map[string]string{"a/one.yaml": validCompose, "a/two.yaml": validCompose, "compose.yaml": validCompose},
			env: map[string]string{"COMPOSE_FILE": "a/one.yaml" + string(os.PathListSeparator) + "a/two.yaml"}, want: []string{"a/one.yaml", "a/two.yaml"}},
		{name: "COMPOSE_FILE in .env", files: map[string]string{".env": "COMPOSE_FILE=app/compose.yaml\n", "app/compose.yaml": validCompose, "compose.yaml": validCompose},
			want: []string{"app/compose.yaml"}},
		{name: "COMPOSE_PATH_SEPARATOR in .env", files: map[string]string{".env": "COMPOSE_PATH_SEPARATOR=,\nCOMPOSE_FILE=a.yaml,b.yaml\n", "a.yaml": validCompose, "b.yaml": validCompose},
			want: []string{"a.yaml", "b.yaml"}},
		{name: "the environment wins over .env", files: map[string]string{".env": "COMPOSE_FILE=a.yaml\n", "a.yaml": validCompose, "b.yaml": validCompose},
			env: map[string]string{"COMPOSE_FILE": "b.yaml"}, want: []string{"b.yaml"}},
		{name: "-f wins over COMPOSE_FILE", files: map[string]string{"a.yaml": validCompose, "b.yaml": validCompose},
			env: map[string]string{"COMPOSE_FILE": "a.yaml"}, q: ComposeQuery{Files: []string{"b.yaml"}}, want: []string{"b.yaml"}},
		{name: "-f in another directory", files: map[string]string{"app/compose.yaml": validCompose, "compose.yaml": validCompose},
			q: ComposeQuery{Files: []string{"app/compose.yaml"}}, want: []string{"app/compose.yaml"}},
		{name: "--project-directory: discovery and .env from there", files: map[string]string{"proj/compose.yaml": validCompose, "compose.yaml": validCompose},
			q: ComposeQuery{ProjectDir: "proj"}, want: []string{"proj/compose.yaml"}},
		{name: "--project-directory's .env names files relative to the working directory",
			files: map[string]string{"proj/.env": "COMPOSE_FILE=proj/other.yaml\n", "proj/other.yaml": validCompose, "proj/compose.yaml": validCompose},
			q:     ComposeQuery{ProjectDir: "proj"}, want: []string{"proj/other.yaml"}},
		{name: "--env-file replaces .env", files: map[string]string{"ci.env": "COMPOSE_FILE=ci.yaml\n", ".env": "COMPOSE_FILE=compose.yaml\n", "ci.yaml": validCompose, "compose.yaml": validCompose},
			q: ComposeQuery{EnvFiles: []string{"ci.env"}}, want: []string{"ci.yaml"}},
		{name: "COMPOSE_DISABLE_ENV_FILE", files: map[string]string{".env": "COMPOSE_FILE=a.yaml\n", "a.yaml": validCompose, "compose.yaml": validCompose},
			env: map[string]string{"COMPOSE_DISABLE_ENV_FILE": "true"}, want: []string{"compose.yaml"}},
		{name: "the .env of the directory the project is found in is not read for discovery",
			files: map[string]string{".env": "COMPOSE_FILE=a.yaml\n", "a.yaml": validCompose, "compose.yaml": validCompose, "sub/.keep": ""},
			cwd:   "sub", want: []string{"compose.yaml"}},
		{name: ".env in the working directory names a file above it", files: map[string]string{"sub/.env": "COMPOSE_FILE=../app.yaml\n", "app.yaml": validCompose},
			cwd: "sub", want: []string{"app.yaml"}},
		{name: ".env interpolates COMPOSE_FILE", files: map[string]string{".env": "STAGE=dev\nCOMPOSE_FILE=compose.${STAGE}.yaml\n", "compose.dev.yaml": validCompose},
			want: []string{"compose.dev.yaml"}},
		{name: "COMPOSE_FILE names a missing file", files: map[string]string{"compose.yaml": validCompose},
			env: map[string]string{"COMPOSE_FILE": "missing.yaml"}, fails: true},
		{name: "COMPOSE_FILE names a directory", files: map[string]string{"dir/.keep": ""},
			env: map[string]string{"COMPOSE_FILE": "dir"}, fails: true},
		{name: "COMPOSE_FILE set but empty counts as unset, as in docker-compose v1", files: map[string]string{"compose.yaml": validCompose},
			env: map[string]string{"COMPOSE_FILE": ""}, want: []string{"compose.yaml"}, deviates: true},
		{name: "a missing --env-file", files: map[string]string{"compose.yaml": validCompose},
			q: ComposeQuery{EnvFiles: []string{"missing.env"}}, fails: true},
		{name: "COMPOSE_DISABLE_ENV_FILE not a boolean", files: map[string]string{"compose.yaml": validCompose},
			env: map[string]string{"COMPOSE_DISABLE_ENV_FILE": "maybe"}, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for name, content := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cwd := filepath.Join(root, filepath.FromSlash(tc.cwd))
			t.Chdir(cwd)
			unsetenv(t, composeEnv...)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			q := tc.q
			q.WorkingDir, q.Env = cwd, Environ(os.Environ())
			got, err := DiscoverCompose(q)
			refFiles, refDir, refErr := composeGoFinds(t, tc.q)
			if tc.fails {
				if err == nil || refErr == nil {
					t.Fatalf("want both to refuse: DiscoverCompose %v, %v; compose-go %v, %v", got, err, refFiles, refErr)
				}
				t.Logf("DiscoverCompose: %v\ncompose-go:      %v", err, refErr)
				return
			}
			var want []string
			for _, f := range tc.want {
				want = append(want, filepath.Join(root, filepath.FromSlash(f)))
			}
			if tc.deviates {
				if refErr == nil || err != nil || !slices.Equal(got.Files, want) {
					t.Fatalf("want compose-go to refuse and DiscoverCompose to find %v: DiscoverCompose %v, %v; compose-go %v, %v", want, got.Files, err, refFiles, refErr)
				}
				return
			}
			if err != nil || refErr != nil {
				t.Fatalf("DiscoverCompose: %v; compose-go: %v", err, refErr)
			}
			if !slices.Equal(refFiles, want) {
				t.Fatalf("test case: compose-go selects %v, the case says %v", refFiles, want)
			}
			if !slices.Equal(got.Files, refFiles) || got.Dir != refDir {
				t.Errorf("DiscoverCompose found %v in %s; compose-go %v in %s", got.Files, got.Dir, refFiles, refDir)
			}
		})
	}
}

func TestDefaultNamesAreComposeGos(t *testing.T) {
	if !slices.Equal(DefaultComposeFileNames(), cli.DefaultFileNames) || !slices.Equal(DefaultOverrideFileNames(), cli.DefaultOverrideFileNames) {
		t.Errorf("compose-go looks for %v and %v", cli.DefaultFileNames, cli.DefaultOverrideFileNames)
	}
}

// TestResolveDirFollowsDiscovery: a command without project flags puts the
// environment next to the project compose finds, COMPOSE_FILE of .env
// included, and --dir or DEVMTLS_DIR skip discovery (and its errors).
func TestResolveDirFollowsDiscovery(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{".env": "COMPOSE_FILE=app/compose.yaml\n", "app/compose.yaml": validCompose} {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := ResolveDir("", root, Env{}); err != nil || got != filepath.Join(root, "app", DirName) {
		t.Errorf("COMPOSE_FILE in .env: %s, %v", got, err)
	}
	broken := Env{"COMPOSE_FILE": "missing.yaml"}
	if _, err := ResolveDir("", root, broken); err == nil {
		t.Error("a COMPOSE_FILE naming no file was accepted")
	}
	if got, err := ResolveDir("env", root, broken); err != nil || got != filepath.Join(root, "env") {
		t.Errorf("--dir: %s, %v", got, err)
	}
	broken[EnvDir] = "/from/env"
	if got, err := ResolveDir("", root, broken); err != nil || got != filepath.FromSlash("/from/env") {
		t.Errorf("DEVMTLS_DIR: %s, %v", got, err)
	}
	empty := t.TempDir()
	if got, err := ResolveDir("", empty, Env{}); err != nil || got != filepath.Join(empty, DirName) {
		t.Errorf("no project: %s, %v", got, err)
	}
}
