package composetest

// Helpers for the end-to-end tests that run devmtls against the real Docker
// Engine and both Compose lines of the machine (testenv.ComposeLines).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/hybrid"
	"github.com/devmtls/devmtls/internal/testbin"
	"github.com/devmtls/devmtls/internal/testenv"
)

// e2eState is what TestMain cleans up: the binary built for the run and the
// example images, tagged uniquely so parallel runs never collide.
type e2eState struct {
	imgOnce       sync.Once
	shopImage     string
	haproxyImage  string
	imgErr        error
	imagesBuilt   bool
	tmp           string
	runID         string
	imagesMu      sync.Mutex
	extraImages   []string
	dockerChecked sync.Once
	dockerErr     error
	psqlOnce      sync.Once
	psqlImage     string
	psqlErr       error
}

func newE2EState() *e2eState {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &e2eState{runID: hex.EncodeToString(b)}
}

func (s *e2eState) cleanup() {
	if s.imagesBuilt {
		args := append([]string{"rmi", "--force", s.shopImage, s.haproxyImage}, s.extraImages...)
		_ = exec.Command("docker", args...).Run()
	}
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}

// e2e is shared by every test of this package's run; TestMain cleans it up.
var e2e = newE2EState()

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// devmtlsBinary returns the CLI TestMain built for this run.
func devmtlsBinary(t testing.TB) string {
	t.Helper()
	return devmtlsBin
}

// requireDocker fails (CI) or skips (laptop) without a running Docker
// Engine; testenv.ComposeLine.Require checks each compose.
func requireDocker(t testing.TB) {
	t.Helper()
	testenv.LookPath(t, "docker", "install Docker Engine (apt-get install docker.io) and start dockerd")
	e2e.dockerChecked.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		d, err := compose.ConnectDocker(ctx)
		if err == nil {
			d.Close()
		}
		e2e.dockerErr = err
	})
	if e2e.dockerErr != nil {
		testenv.Missing(t, "a running Docker daemon", e2e.dockerErr.Error())
	}
}

// exampleImages builds the example's images once per run (examples/build-images.sh).
func exampleImages(t testing.TB) (shop, haproxy string) {
	t.Helper()
	requireDocker(t)
	testenv.LookPath(t, "haproxy", "apt-get install haproxy (its binary goes into the gateway image)")
	e2e.imgOnce.Do(func() {
		e2e.shopImage = "devmtls-e2e/shopsvc:" + e2e.runID
		e2e.haproxyImage = "devmtls-e2e/haproxy:" + e2e.runID
		cmd := exec.Command(filepath.Join(repoRoot(t), "examples", "build-images.sh"))
		cmd.Env = append(os.Environ(), "SHOP_IMAGE="+e2e.shopImage, "SHOP_HAPROXY_IMAGE="+e2e.haproxyImage)
		out, err := cmd.CombinedOutput()
		e2e.imagesBuilt = true
		if err != nil {
			e2e.imgErr = fmt.Errorf("examples/build-images.sh: %v\n%s", err, out)
		}
	})
	if e2e.imgErr != nil {
		t.Fatal(e2e.imgErr)
	}
	return e2e.shopImage, e2e.haproxyImage
}

// e2eProject is a compose project in a temporary directory with a unique
// compose project name, run with one Compose line, removed (containers and
// networks) when the test ends, whether it passed or not.
type e2eProject struct {
	t       *testing.T
	dir     string
	name    string
	compose testenv.ComposeLine
	env     []string
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

func newE2EProject(t *testing.T, dir string, line testenv.ComposeLine, env ...string) *e2eProject {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	// The test's own name without the line's subtest, which goes first.
	test, _, _ := strings.Cut(t.Name(), "/")
	test = strings.Trim(nonName.ReplaceAllString(strings.ToLower(test), "-"), "-")
	name := "devmtls-e2e-" + line.Name + "-" + test
	if len(name) > 48 {
		name = name[:48]
	}
	name += "-" + hex.EncodeToString(b)
	p := &e2eProject{t: t, dir: dir, name: name, compose: line, env: append([]string{
		"COMPOSE_PROJECT_NAME=" + name,
		// Pin the line under test, whatever else is installed.
		line.Env(),
	}, env...)}
	t.Cleanup(p.remove)
	return p
}

// remove deletes every container and network of the project through the
// Docker CLI, independently of devmtls and compose.
func (p *e2eProject) remove() {
	label := "label=" + compose.ProjectLabel + "=" + p.name
	if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", label).Output(); len(bytes.TrimSpace(ids)) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f", "-v"}, strings.Fields(string(ids))...)...).Run()
	}
	if ids, _ := exec.Command("docker", "network", "ls", "-q", "--filter", label).Output(); len(bytes.TrimSpace(ids)) > 0 {
		_ = exec.Command("docker", append([]string{"network", "rm"}, strings.Fields(string(ids))...)...).Run()
	}
}

// devmtls runs the built binary in the project directory.
func (p *e2eProject) devmtls(args ...string) (stdout, stderr string, code int) {
	p.t.Helper()
	return p.devmtlsWithInput("", args...)
}

// devmtlsWithInput runs the built binary with stdin.
func (p *e2eProject) devmtlsWithInput(stdin string, args ...string) (stdout, stderr string, code int) {
	p.t.Helper()
	return testbin.Run(p.t, devmtlsBinary(p.t), p.dir, p.env, stdin, args...)
}

// must runs devmtls and fails the test unless it exits 0.
func (p *e2eProject) must(args ...string) string {
	p.t.Helper()
	out, errOut, code := p.devmtls(args...)
	if code != 0 {
		p.t.Fatalf("devmtls %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// statusJSON is what the tests read of `devmtls status --json`, decoded as
// any script reading the documented output would.
type statusJSON struct {
	EnvDir string `json:"env_dir"`
	Docker struct {
		Reachable  bool   `json:"reachable"`
		APIVersion string `json:"api_version,omitempty"`
	} `json:"docker"`
	Compose *struct {
		Command        string                 `json:"command,omitempty"`
		Implementation compose.Implementation `json:"implementation,omitempty"`
		Version        string                 `json:"version,omitempty"`
		Error          string                 `json:"error,omitempty"`
	} `json:"compose"`
	Credentials *struct {
		Mode certs.Mode `json:"mode"`
	} `json:"credentials"`
	Services []compose.ServiceStatus `json:"services"`
	Forwards *hybrid.State           `json:"forwards"`
}

func (p *e2eProject) status(args ...string) statusJSON {
	p.t.Helper()
	var s statusJSON
	out := p.must(append([]string{"status", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		p.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return s
}

// containerIDs maps each service to its container IDs.
func (s statusJSON) containerIDs() map[string]string {
	out := map[string]string{}
	for _, svc := range s.Services {
		for _, c := range svc.Containers {
			out[svc.Name] += c.ID
		}
	}
	return out
}

func (s statusJSON) service(name string) *compose.ServiceStatus {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

// leftovers lists the project's containers and networks still on the Engine.
func (p *e2eProject) leftovers() string {
	label := "label=" + compose.ProjectLabel + "=" + p.name
	c, _ := exec.Command("docker", "ps", "-aq", "--filter", label).Output()
	n, _ := exec.Command("docker", "network", "ls", "-q", "--filter", label).Output()
	return strings.TrimSpace(string(c) + string(n))
}

// docker runs the docker CLI.
func docker(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	return string(out), err
}

// freePorts returns n loopback ports free at the time of the call.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []io.Closer
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// copyTree copies the example project (without any .devmtls) into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() && fi.Name() == ".devmtls" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
