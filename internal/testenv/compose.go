package testenv

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// ComposeLine is one line of Docker Compose the end-to-end tests run devmtls
// against. The two differ where users see it: container names, `up --wait`,
// and the output of config and ps.
type ComposeLine struct {
	// Name names the subtest: compose-v2 or compose-v1.
	Name string
	// Command is the compose command line, and DEVMTLS_COMPOSE's value.
	Command string
	// V1 marks the Python docker-compose 1.x line.
	V1 bool
	// Install says how to get it.
	Install string
	// Version is what the installed compose reports, once ForEachCompose
	// has run Require.
	Version string
}

// ComposeLines are the Compose lines every compose end-to-end test runs
// against: the `docker compose` plugin (v5, the v2 line) and Debian's
// docker-compose v1.29.
func ComposeLines() []ComposeLine {
	return []ComposeLine{
		{Name: "compose-v2", Command: "docker compose",
			Install: "run make deps (it builds the pinned Compose plugin into ~/.docker/cli-plugins), or install the docker-compose-plugin package"},
		{Name: "compose-v1", Command: "docker-compose", V1: true,
			Install: "run make deps, or apt-get install docker-compose (Debian's v1.29)"},
	}
}

// Env is the variable that makes devmtls run this line.
func (c ComposeLine) Env() string { return "DEVMTLS_COMPOSE=" + c.Command }

// Args is the command line to run compose itself with args.
func (c ComposeLine) Args(args ...string) []string {
	return append(strings.Fields(c.Command), args...)
}

// Require checks that this line's compose runs and is of its line, and
// returns its version; otherwise the test fails (CI) or skips (Missing).
func (c ComposeLine) Require(t testing.TB) string {
	t.Helper()
	args := c.Args("version", "--short")
	if _, err := exec.LookPath(args[0]); err != nil {
		Missing(t, args[0], c.Install)
	}
	out, err := exec.Command(args[0], args[1:]...).Output()
	version := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	if err != nil || version == "" {
		Missing(t, c.Command, c.Install)
	}
	if major, _, _ := strings.Cut(version, "."); (major == "1") != c.V1 {
		Missing(t, c.Name, c.Command+" reports version "+version+", which is not of this line: "+c.Install)
	}
	return version
}

// ContainerName is the name compose gives the n-th container of a service:
// project-service-n for the v2 line, project_service_n for v1.
func (c ComposeLine) ContainerName(project, service string, n int) string {
	sep := "-"
	if c.V1 {
		sep = "_"
	}
	return strings.Join([]string{project, service, strconv.Itoa(n)}, sep)
}

// ForEachCompose runs test once per Compose line, each as a parallel subtest
// named after the line, with Version set by Require.
func ForEachCompose(t *testing.T, test func(t *testing.T, c ComposeLine)) {
	t.Helper()
	for _, c := range ComposeLines() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Version = c.Require(t)
			test(t, c)
		})
	}
}
