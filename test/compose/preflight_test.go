package composetest

import (
	"cmp"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/testenv"
)

// Docker missing, compose missing, the daemon down: one sentence each saying
// what to install or start, exit 1, and nothing run. With either Compose line
// alone installed, devmtls finds it and status names it.
func TestPreflightErrors(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"compose.yaml": "services:\n  api: {image: x}\n"})
	noDocker := t.TempDir() // a PATH with neither docker nor docker-compose
	onlyDocker := t.TempDir()
	dockerPath := testenv.LookPath(t, "docker", "install Docker Engine (apt-get install docker.io)")
	if err := os.Symlink(dockerPath, filepath.Join(onlyDocker, "docker")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"docker not installed", []string{"PATH=" + noDocker},
			"devmtls: Docker is not installed: install Docker Engine with the Compose plugin (https://docs.docker.com/engine/install/), or your distribution's docker.io and docker-compose packages\n"},
		{"compose not installed", []string{"PATH=" + onlyDocker, "DOCKER_CONFIG=" + t.TempDir()},
			"devmtls: Docker Compose is not installed: install the Compose plugin (https://docs.docker.com/compose/install/linux/, package docker-compose-plugin) or the standalone docker-compose\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectPreflightError(t, dir, tc.env, tc.want)
		})
	}
	testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
		t.Run("daemon down", func(t *testing.T) {
			sock := filepath.Join(dir, line.Name+".sock")
			expectPreflightError(t, dir, []string{"PATH=" + os.Getenv("PATH"), "DOCKER_HOST=unix://" + sock, line.Env()},
				"devmtls: the Docker daemon is not running at unix://"+sock+": start it (sudo systemctl start docker, or open Docker Desktop)\n")
		})
		t.Run("the only compose installed", func(t *testing.T) {
			requireDocker(t)
			path, config := onlyCompose(t, line, dockerPath)
			cmd := exec.Command(devmtlsBinary(t), "status", "--json")
			cmd.Dir = dir
			cmd.Env = append(filteredEnviron("PATH", "DEVMTLS_COMPOSE", "DOCKER_CONFIG"), "PATH="+path, "DOCKER_CONFIG="+config)
			out, err := cmd.Output()
			var st statusJSON
			if err != nil || json.Unmarshal(out, &st) != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			want := compose.ComposeV2
			if line.V1 {
				want = compose.ComposeV1
			}
			if c := st.Compose; c == nil || c.Implementation != want || c.Version != line.Version || !strings.HasSuffix(c.Command, line.Command) {
				t.Errorf("with only %s installed, status names %+v", line.Command, st.Compose)
			}
		})
	})
}

// expectPreflightError runs devmtls up -d in dir with env replacing the
// Docker and compose variables, and wants exit 1 with exactly want, and no
// overlay written.
func expectPreflightError(t *testing.T, dir string, env []string, want string) {
	t.Helper()
	cmd := exec.Command(devmtlsBinary(t), "up", "-d")
	cmd.Dir = dir
	cmd.Env = append(filteredEnviron("PATH", "DOCKER_HOST", "DEVMTLS_COMPOSE", "DOCKER_CONFIG"), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(out) != want {
		t.Errorf("exit %v, output\n%q\nwant\n%q", err, out, want)
	}
	if exists(filepath.Join(dir, ".devmtls", "compose.override.yaml")) {
		t.Error("preflight failed but devmtls prepared the overlay anyway")
	}
}

// onlyCompose returns a PATH and a DOCKER_CONFIG under which line's compose
// is the only one: docker plus docker-compose v1, or docker plus the plugin.
func onlyCompose(t *testing.T, line testenv.ComposeLine, dockerPath string) (path, dockerConfig string) {
	t.Helper()
	path, dockerConfig = t.TempDir(), t.TempDir()
	link := func(target, name string) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	link(dockerPath, filepath.Join(path, "docker"))
	if line.V1 {
		link(testenv.LookPath(t, "docker-compose", line.Install), filepath.Join(path, "docker-compose"))
		return path, dockerConfig
	}
	out, err := exec.Command("docker", "info", "--format", `{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}`).Output()
	plugin := strings.TrimSpace(string(out))
	if err != nil || plugin == "" {
		t.Fatalf("docker info names no compose plugin: %v %q", err, out)
	}
	link(plugin, filepath.Join(dockerConfig, "cli-plugins", "docker-compose"))
	return path, dockerConfig
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func filteredEnviron(drop ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if k == d {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// Without root, devmtls cannot give a key to another uid: it stops with a
// sentence saying how to fix it, and never loosens the key's permissions.
// A user without access to the Docker socket gets the docker-group sentence.
func TestNotRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "run the tests as root, as CI does: this test switches to an unprivileged user with setpriv")
	}
	setpriv := testenv.LookPath(t, "setpriv", "apt-get install util-linux")
	requireDocker(t)
	socket := cmp.Or(os.Getenv("DOCKER_HOST"), "unix:///var/run/docker.sock")
	if !strings.HasPrefix(socket, "unix://") {
		testenv.Missing(t, "a Docker daemon on a unix socket", "DOCKER_HOST is "+socket+"; the docker-group sentence is about socket permissions")
	}
	bin := devmtlsBinary(t)
	dir := writeFiles(t, map[string]string{"compose.yaml": "services:\n  db:\n    image: x\n    user: '999:999'\n  api:\n    image: x\n"})
	// The binary and the project must be reachable for uid 65534.
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(bin)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, int) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(filteredEnviron("HOME"), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	out, code := asNobody("compose", "overlay")
	want := `devmtls: service db needs its key owned by 999:999 (its x-devmtls user or compose user:), but devmtls runs as uid 65534 and only root can give files away; run devmtls with sudo, or run the service as your own uid (user: "65534:65534")` + "\n"
	if code != 1 || !strings.HasSuffix(out, "\n"+want) {
		t.Errorf("exit %d output\n%q\nwant\n%q", code, out, want)
	}
	entries, _ := filepath.Glob(filepath.Join(dir, ".devmtls", "compose", "db", "mtls", "*"))
	for _, e := range entries {
		if fi, err := os.Stat(e); err == nil && fi.Mode().Perm()&0o077 != 0 && strings.HasSuffix(e, "key") {
			t.Errorf("%s is %v", e, fi.Mode().Perm())
		}
	}

	out, code = asNobody("up", "-d", "api")
	if code != 1 || !strings.Contains(out, "permission denied on the Docker daemon socket "+socket+": add your user to the docker group") {
		t.Errorf("exit %d output %q", code, out)
	}
}
