package composetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/compose"
	"go.yaml.in/yaml/v4"
)

// handOverride is what a user would write by hand to give the example's
// services the same mounts devmtls gives them: the same binds, variables,
// host and label, so compose sees identical service configurations and
// neither command recreates anything.
const handOverride = `services:
%s`

const handService = `  %[1]s:
    environment:
      MTLS_CA: /var/mtls/ca
      MTLS_CERT: /var/mtls/cert
      MTLS_KEY: /var/mtls/key
      MTLS_KEY_CERT: /var/mtls/key+cert
    extra_hosts:
      - host.docker.internal:host-gateway
    labels:
      dev.devmtls.credentials: "%[3]s"
    volumes:
      - type: bind
        source: %[2]s
        target: /var/mtls
        read_only: true
`

// BenchmarkUpOverhead measures `devmtls up -d` against `docker-compose up -d`
// with an equivalent hand-written override, side by side on the same running
// project (the steady state a developer hits on every re-run, where devmtls's
// own work — loading the project, checking credentials and copies, pinging
// the daemon — weighs most). It reports both medians, the difference and the
// ratio.
func BenchmarkUpOverhead(b *testing.B) {
	shopImage, haproxyImage := exampleImages(b)
	dir := b.TempDir()
	copyTree(b, filepath.Join(repoRoot(b), "examples", "shop"), dir)
	ports := freePorts(b, 3)
	name := fmt.Sprintf("devmtls-bench-%s", e2e.runID)
	env := append(os.Environ(), "COMPOSE_PROJECT_NAME="+name, compose.EnvCompose+"=docker-compose", "SHOP_IMAGE="+shopImage, "SHOP_HAPROXY_IMAGE="+haproxyImage,
		fmt.Sprintf("SHOP_GATEWAY_PORT=%d", ports[0]), fmt.Sprintf("SHOP_ORDERS_PORT=%d", ports[1]), fmt.Sprintf("SHOP_DOCS_PORT=%d", ports[2]))
	run := func(bin string, args ...string) time.Duration {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		return d
	}
	devmtls := devmtlsBinary(b)
	b.Cleanup(func() {
		cmd := exec.Command(devmtls, "down")
		cmd.Dir, cmd.Env = dir, env
		_ = cmd.Run()
	})
	run(devmtls, "up", "-d")

	// The label is the certificate digest devmtls computed; a hand-written
	// override would carry nothing like it, but without it compose would
	// recreate the containers on every switch between the two commands.
	overlay, err := os.ReadFile(filepath.Join(dir, ".devmtls", compose.OverlayFile))
	if err != nil {
		b.Fatal(err)
	}
	var parsed struct {
		Services map[string]struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(overlay, &parsed); err != nil {
		b.Fatal(err)
	}
	var services strings.Builder
	for _, svc := range []string{"gateway", "inventory", "orders"} {
		fmt.Fprintf(&services, handService, svc, filepath.Join(dir, ".devmtls", "compose", svc, "mtls"), parsed.Services[svc].Labels[compose.CredentialsLabel])
	}
	hand := filepath.Join(dir, "hand-override.yaml")
	if err := os.WriteFile(hand, []byte(fmt.Sprintf(handOverride, services.String())), 0o644); err != nil {
		b.Fatal(err)
	}
	composeBin, err := exec.LookPath("docker-compose")
	if err != nil {
		b.Fatal(err)
	}
	ids := func() string {
		out, _ := exec.Command("docker", "ps", "-q", "--no-trunc", "--filter", "label="+compose.ProjectLabel+"="+name).Output()
		f := strings.Fields(string(out))
		slices.Sort(f)
		return strings.Join(f, ",")
	}
	before := ids()
	// Warm both paths once (page cache, Python imports).
	run(composeBin, "-f", "compose.yaml", "-f", hand, "up", "-d")
	run(devmtls, "up", "-d")

	var withDevmtls, withCompose []time.Duration
	b.ResetTimer()
	for i := 0; i < max(b.N, 5); i++ {
		withCompose = append(withCompose, run(composeBin, "-f", "compose.yaml", "-f", hand, "up", "-d"))
		withDevmtls = append(withDevmtls, run(devmtls, "up", "-d"))
	}
	b.StopTimer()
	if after := ids(); after != before {
		b.Fatalf("containers were recreated: the hand-written override is not equivalent\nbefore %s\nafter  %s", before, after)
	}
	md, mc := median(withDevmtls), median(withCompose)
	b.ReportMetric(float64(md.Milliseconds()), "devmtls-ms")
	b.ReportMetric(float64(mc.Milliseconds()), "compose-ms")
	b.ReportMetric(float64((md - mc).Milliseconds()), "overhead-ms")
	b.ReportMetric(float64(md)/float64(mc), "ratio")
	b.Logf("median over %d runs each: devmtls up -d %v, docker-compose up -d (hand-written override) %v, overhead %v, ratio %.3f",
		len(withDevmtls), md.Round(time.Millisecond), mc.Round(time.Millisecond), (md - mc).Round(time.Millisecond), float64(md)/float64(mc))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
