package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/sirupsen/logrus"
)

// These tests pin down that devmtls sees the same project docker compose
// would: the same files, name, directory, interpolation and profiles.

func TestDiscoveryUpwardsWithOverride(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"docker-compose.yml":          "services:\n  api: {image: x}\n",
		"docker-compose.override.yml": "services:\n  extra: {image: x}\n",
		"src/deep/.keep":              "",
	})
	p := mustLoad(t, filepath.Join(dir, "src", "deep"), LoadOptions{})
	if p.Dir != dir || !slices.Equal(p.Files, []string{filepath.Join(dir, "docker-compose.yml"), filepath.Join(dir, "docker-compose.override.yml")}) {
		t.Errorf("dir %s files %v", p.Dir, p.Files)
	}
	if !slices.Equal(p.ServiceNames(), []string{"api", "extra"}) {
		t.Errorf("services %v", p.ServiceNames())
	}
	// compose.yaml is preferred over docker-compose.yml.
	dir2 := writeProject(t, map[string]string{"compose.yaml": "services:\n  a: {image: x}\n", "docker-compose.yml": "services:\n  b: {image: x}\n"})
	if p := mustLoad(t, dir2, LoadOptions{}); !slices.Equal(p.ServiceNames(), []string{"a"}) {
		t.Errorf("services %v, want compose.yaml's", p.ServiceNames())
	}
}

func TestNoProject(t *testing.T) {
	dir := t.TempDir()
	_, err := load(t, dir, LoadOptions{})
	if !errors.Is(err, ErrNoProject) {
		t.Fatalf("err %v", err)
	}
	if p, err := Find(context.Background(), LoadOptions{WorkingDir: dir}); p != nil || err != nil {
		t.Errorf("Find = %v, %v; want nil, nil", p, err)
	}
	if _, err := load(t, dir, LoadOptions{Files: []string{"-"}}); err == nil || !strings.Contains(err.Error(), "cannot take them from stdin") {
		t.Errorf("-f - : %v", err)
	}
	if _, err := load(t, dir, LoadOptions{Environ: []string{"COMPOSE_FILE=-"}}); err == nil || !strings.Contains(err.Error(), "COMPOSE_FILE names -: devmtls reads the compose files more than once") {
		t.Errorf("COMPOSE_FILE=-: %v", err)
	}
	if _, err := Find(context.Background(), LoadOptions{WorkingDir: dir, Files: []string{"missing.yaml"}}); err == nil {
		t.Error("an explicit -f that does not exist is an error, even for Find")
	}
}

func TestComposeFileAndProjectNameFromEnvironment(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"a.yaml": "services:\n  a: {image: x}\n",
		"b.yaml": "services:\n  b: {image: x}\n",
	})
	p := mustLoad(t, dir, LoadOptions{Environ: []string{"COMPOSE_FILE=a.yaml:b.yaml", "COMPOSE_PROJECT_NAME=fromenv"}})
	if p.Name != "fromenv" || !slices.Equal(p.ServiceNames(), []string{"a", "b"}) {
		t.Errorf("name %s services %v", p.Name, p.ServiceNames())
	}
	// -p wins over COMPOSE_PROJECT_NAME, and name: loses to both.
	dir2 := writeProject(t, map[string]string{"compose.yaml": "name: fromfile\nservices:\n  a: {image: x}\n"})
	if p := mustLoad(t, dir2, LoadOptions{}); p.Name != "fromfile" {
		t.Errorf("name %s, want fromfile", p.Name)
	}
	if p := mustLoad(t, dir2, LoadOptions{ProjectName: "flag", Environ: []string{"COMPOSE_PROJECT_NAME=env"}}); p.Name != "flag" {
		t.Errorf("name %s, want flag", p.Name)
	}
	// COMPOSE_FILE may come from the .env file.
	dir3 := writeProject(t, map[string]string{".env": "COMPOSE_FILE=other.yaml\n", "other.yaml": "services:\n  o: {image: x}\n"})
	if p := mustLoad(t, dir3, LoadOptions{}); !slices.Equal(p.ServiceNames(), []string{"o"}) {
		t.Errorf("services %v", p.ServiceNames())
	}
}

func TestInterpolationDotEnvAndEnvFile(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": "services:\n  api:\n    image: x\n    x-devmtls:\n      mount_path: ${TLS_DIR:-/var/mtls}\n      user: ${TLS_UID}:${TLS_UID}\n",
		".env":         "TLS_DIR=/from/dotenv\nTLS_UID=7\n",
		"ci.env":       "TLS_DIR=/from/envfile\nTLS_UID=8\n",
	})
	api := func(p *Project) *Service { s, _ := p.Service("api"); return s }
	if s := api(mustLoad(t, dir, LoadOptions{})); s.MountPath != "/from/dotenv" || *s.User != (Owner{7, 7}) {
		t.Errorf(".env: %+v", s.Settings)
	}
	if s := api(mustLoad(t, dir, LoadOptions{EnvFiles: []string{"ci.env"}})); s.MountPath != "/from/envfile" || *s.User != (Owner{8, 8}) {
		t.Errorf("--env-file: %+v", s.Settings)
	}
	// The process environment wins over .env, as in compose.
	if s := api(mustLoad(t, dir, LoadOptions{Environ: []string{"TLS_DIR=/from/shell"}})); s.MountPath != "/from/shell" {
		t.Errorf("environment: %+v", s.Settings)
	}
}

func TestProfilesAndTwoFiles(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": "services:\n  api: {image: x}\n  debug: {image: x, profiles: [debug]}\n",
		"more.yaml":    "services:\n  api:\n    x-devmtls: {formats: [postgres]}\n  tools: {image: x, profiles: [tools], x-devmtls: false}\n",
	})
	p := mustLoad(t, dir, LoadOptions{Files: []string{"compose.yaml", "more.yaml"}, Profiles: []string{"debug"}})
	if !slices.Equal(p.Profiles, []string{"debug"}) || !slices.Equal(p.ServiceNames(), []string{"api", "debug"}) || !slices.Equal(p.OptedOut, []string{"tools"}) {
		t.Fatalf("profiles %v services %v opted out %v", p.Profiles, p.ServiceNames(), p.OptedOut)
	}
	debug, _ := p.Service("debug")
	api, _ := p.Service("api")
	if !debug.Active || !api.HasFormat("postgres") {
		t.Errorf("debug active %v, api formats %v", debug.Active, api.Formats)
	}
	// Without the profile, debug still gets credentials (and stays in the
	// certificate), so switching profiles never renews them.
	p = mustLoad(t, dir, LoadOptions{Files: []string{"compose.yaml", "more.yaml"}})
	debug, err := p.Service("debug")
	if err != nil || debug.Active {
		t.Errorf("debug without its profile: %v active=%v", err, debug != nil && debug.Active)
	}
	if !slices.Equal(p.CertsRequest().Services, []string{"api", "debug"}) {
		t.Errorf("request services %v", p.CertsRequest().Services)
	}
	// COMPOSE_PROFILES works like --profile.
	p = mustLoad(t, dir, LoadOptions{Files: []string{"compose.yaml", "more.yaml"}, Environ: []string{"COMPOSE_PROFILES=debug"}})
	if d, _ := p.Service("debug"); !d.Active {
		t.Error("COMPOSE_PROFILES=debug did not enable debug")
	}
}

func TestProjectDirectoryAndInclude(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"deploy/compose.yaml": "include:\n  - ../shared/db.yaml\nservices:\n  api:\n    image: x\n    x-devmtls: {mount_path: /tls}\n",
		"shared/db.yaml":      "services:\n  db:\n    image: x\n    x-devmtls: {formats: [postgres], user: '70:70'}\n",
		"elsewhere/.keep":     "",
	})
	p := mustLoad(t, filepath.Join(dir, "elsewhere"), LoadOptions{Files: []string{"../deploy/compose.yaml"}, ProjectName: "inc"})
	if p.Dir != filepath.Join(dir, "deploy") || p.Name != "inc" {
		t.Errorf("dir %s name %s", p.Dir, p.Name)
	}
	db, err := p.Service("db")
	if err != nil || !db.HasFormat("postgres") || *db.User != (Owner{70, 70}) {
		t.Fatalf("included db: %v %+v", err, db)
	}
	// --project-directory alone starts discovery there.
	p = mustLoad(t, filepath.Join(dir, "elsewhere"), LoadOptions{ProjectDir: "../deploy"})
	if p.Dir != filepath.Join(dir, "deploy") || !slices.Equal(p.ServiceNames(), []string{"api", "db"}) {
		t.Errorf("dir %s services %v", p.Dir, p.ServiceNames())
	}
}

// A file compose would reject gets compose-go's own schema message.
func TestInvalidComposeFileGetsComposeMessage(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  api:\n    image: x\n    ports: {a: b}\n"})
	_, err := load(t, dir, LoadOptions{})
	if err == nil || err.Error() != "validating "+filepath.Join(dir, "compose.yaml")+": services.api.ports must be a array" {
		t.Errorf("error %q", err)
	}
}

// TestLoadReadsTheEnvFilesComposeReads: compose reads the working
// directory's .env before it knows the files (COMPOSE_FILE and
// COMPOSE_PROJECT_NAME may come from it) and the project directory's .env
// after, the first one winning for a variable both set. Load sees the project
// compose-go's own loader sees through docker compose's option chain.
func TestLoadReadsTheEnvFilesComposeReads(t *testing.T) {
	logrus.SetLevel(logrus.ErrorLevel)
	root := writeProject(t, map[string]string{
		".env":             "COMPOSE_FILE=app/compose.yaml\nCOMPOSE_PROJECT_NAME=fromcwd\nTLS_DIR=/from/cwd\n",
		"app/.env":         "TLS_DIR=/from/app\nTLS_UID=7\n",
		"app/compose.yaml": "services:\n  api:\n    image: x\n    x-devmtls:\n      mount_path: ${TLS_DIR}\n      user: ${TLS_UID}:${TLS_UID}\n",
		"ci.env":           "COMPOSE_FILE=app/compose.yaml\nTLS_DIR=/from/ci\nTLS_UID=8\n",
	})
	for _, envFiles := range [][]string{nil, {"ci.env"}} {
		t.Run(strings.Join(append([]string{"env-file"}, envFiles...), " "), func(t *testing.T) {
			t.Chdir(root)
			for _, k := range []string{"COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_DISABLE_ENV_FILE", "TLS_DIR", "TLS_UID"} {
				if v, ok := os.LookupEnv(k); ok {
					t.Setenv(k, v)
					os.Unsetenv(k)
				}
			}
			o, err := cli.NewProjectOptions(nil, cli.WithOsEnv, cli.WithEnvFiles(envFiles...), cli.WithDotEnv, cli.WithConfigFileEnv,
				cli.WithDefaultConfigPath, cli.WithEnvFiles(envFiles...), cli.WithDotEnv, cli.WithLoadOptions(loader.WithSkipValidation))
			if err != nil {
				t.Fatal(err)
			}
			want, err := o.LoadProject(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantMount := want.Services["api"].Extensions[Extension].(map[string]any)["mount_path"]
			p := mustLoad(t, root, LoadOptions{EnvFiles: envFiles})
			api, _ := p.Service("api")
			if p.Name != want.Name || p.Dir != want.WorkingDir || !slices.Equal(p.Files, want.ComposeFiles) || api.MountPath != wantMount {
				t.Errorf("Load: %s in %s, %v, mount_path %s\ncompose-go: %s in %s, %v, mount_path %v", p.Name, p.Dir, p.Files, api.MountPath,
					want.Name, want.WorkingDir, want.ComposeFiles, wantMount)
			}
			if envFiles == nil && (p.Name != "fromcwd" || api.MountPath != "/from/cwd" || *api.User != (Owner{7, 7})) {
				t.Errorf("the working directory's .env, then app's: %s, %s, %v", p.Name, api.MountPath, api.User)
			}
		})
	}
}
