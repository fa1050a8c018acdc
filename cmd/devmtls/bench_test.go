package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/benchtable"
	"github.com/devmtls/devmtls/internal/testenv"
)

// benchRounds is how many samples a whole-process benchmark takes per b.N, so
// that `-benchtime 3x` still gives a spread worth a median.
const benchRounds = 5

// timeRun runs argv to completion and returns its wall time.
func timeRun(b *testing.B, argv ...string) time.Duration {
	b.Helper()
	wall, _ := timeRunCPU(b, argv...)
	return wall
}

// timeRunCPU runs argv to completion and returns its wall time and the CPU
// time (user + system) the process used: on a machine shared with other busy
// work the CPU time is the steadier of the two.
func timeRunCPU(b *testing.B, argv ...string) (wall, cpu time.Duration) {
	b.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		b.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// BenchmarkCertsVsOpenSSL times the whole `devmtls certs` process creating a
// fresh environment (ECDSA P-256, devmtls's default) against the way such a
// keypair is made by hand, a self-signed certificate that is its own trust
// anchor: `openssl req -x509 -newkey rsa:4096` (the headline peer) and the
// same command with the key type devmtls uses (`-newkey ec`, P-256), so key
// generation cost alone does not make the ratio. The three run in a rotating
// order within each round so machine noise and cache state hit each of them
// alike. Rows: openssl/devmtls per round.
func BenchmarkCertsVsOpenSSL(b *testing.B) {
	openssl := testenv.LookPath(b, "openssl", "apt-get install openssl")
	dir := b.TempDir()
	n := 0
	peers := []struct {
		name string
		argv func() []string
	}{
		{"devmtls", func() []string {
			return []string{devmtlsBin, "--dir", filepath.Join(dir, fmt.Sprint("env", n)), "certs"}
		}},
		{"openssl-rsa4096", func() []string {
			return []string{openssl, "req", "-x509", "-newkey", "rsa:4096", "-keyout", filepath.Join(dir, fmt.Sprint("rsa.key", n)),
				"-out", filepath.Join(dir, fmt.Sprint("rsa.crt", n)), "-sha256", "-days", "3650", "-nodes", "-subj", "/CN=dev.example.com"}
		}},
		{"openssl-ecP256", func() []string {
			return []string{openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
				"-keyout", filepath.Join(dir, fmt.Sprint("ec.key", n)), "-out", filepath.Join(dir, fmt.Sprint("ec.crt", n)),
				"-sha256", "-days", "3650", "-nodes", "-subj", "/CN=dev.example.com"}
		}},
	}
	took := map[string][]time.Duration{}
	cpu := map[string][]time.Duration{}
	for b.Loop() {
		for range benchRounds {
			for k := range peers {
				p := peers[(n+k)%len(peers)]
				w, c := timeRunCPU(b, p.argv()...)
				took[p.name] = append(took[p.name], w)
				cpu[p.name] = append(cpu[p.name], c)
			}
			n++
		}
	}
	for _, kind := range []string{"wall", "CPU"} {
		m := took
		if kind == "CPU" {
			m = cpu
		}
		ours := m["devmtls"]
		for _, peer := range []string{"openssl-rsa4096", "openssl-ecP256"} {
			target := benchtable.AtLeast(40)
			measure := "devmtls certs creating an environment"
			if peer != "openssl-rsa4096" {
				// Same key type: a fairness check, not the target.
				target, measure = benchtable.Target{}, measure+" (same key type)"
			}
			ratios := make([]float64, len(ours))
			for i := range ours {
				ratios[i] = float64(m[peer][i]) / float64(max(ours[i], time.Microsecond))
			}
			if kind == "wall" {
				b.ReportMetric(benchtable.SpreadOf(ratios).Median, "x-"+peer)
			}
			benchtable.Ratio(b, measure+" ("+kind+" time)", peer, ratios, target,
				fmt.Sprintf("ms min/med/max: devmtls %s, %s %s", msSpread(ours), peer, msSpread(m[peer])))
		}
	}
}

// msSpread is min/median/max of durations in milliseconds.
func msSpread(d []time.Duration) string {
	f := make([]float64, len(d))
	for i, x := range d {
		f[i] = float64(x) / float64(time.Millisecond)
	}
	s := benchtable.SpreadOf(f)
	return fmt.Sprintf("%.1f/%.1f/%.1f", s.Min, s.Median, s.Max)
}

// helloBin builds a Go hello-world the way devmtlsBin is built (same
// toolchain, same environment, same -ldflags form): the floor any Go CLI
// pays to start, against which devmtls's start-up is judged.
func helloBin(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	src := "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(\"hello\", version) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.24\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build hello-world: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkStartup times whole `devmtls version`, `devmtls env` and
// `devmtls certs` (an existing environment) processes against a Go
// hello-world built the same way, alternating the two in each round. Rows:
// devmtls/hello-world per round (target at most 2x) in wall time, and in CPU
// time (user + system) as a check that is steadier under load.
func BenchmarkStartup(b *testing.B) {
	hello := helloBin(b)
	dir := filepath.Join(b.TempDir(), ".devmtls")
	timeRun(b, devmtlsBin, "--dir", dir, "certs")
	cmds := []struct {
		name string
		argv []string
	}{
		{"version", []string{devmtlsBin, "version"}},
		{"env", []string{devmtlsBin, "--dir", dir, "env"}},
		{"certs", []string{devmtlsBin, "--dir", dir, "certs"}},
	}
	type sample struct{ wall, cpu time.Duration }
	ours := map[string][]sample{}
	theirs := map[string][]sample{}
	i := 0
	run := func(m map[string][]sample, name string, argv ...string) {
		w, c := timeRunCPU(b, argv...)
		m[name] = append(m[name], sample{w, c})
	}
	for b.Loop() {
		for range benchRounds * 2 {
			for _, c := range cmds {
				if i%2 == 0 {
					run(theirs, c.name, hello)
					run(ours, c.name, c.argv...)
				} else {
					run(ours, c.name, c.argv...)
					run(theirs, c.name, hello)
				}
				i++
			}
		}
	}
	for _, c := range cmds {
		measure := "devmtls " + c.name + ", whole process"
		if c.name == "certs" {
			measure = "devmtls certs (existing env), whole process"
		}
		for _, kind := range []string{"wall", "CPU"} {
			pick := func(s sample) time.Duration {
				if kind == "CPU" {
					return s.cpu
				}
				return s.wall
			}
			var ratios []float64
			var od, td []time.Duration
			for j, o := range ours[c.name] {
				t := theirs[c.name][j]
				// A hello-world's CPU time can round to 0 on a coarse clock.
				ratios = append(ratios, float64(pick(o))/float64(max(pick(t), time.Microsecond)))
				od, td = append(od, pick(o)), append(td, pick(t))
			}
			if kind == "wall" {
				b.ReportMetric(benchtable.SpreadOf(ratios).Median, c.name+"-x-hello")
			}
			benchtable.Ratio(b, measure+" ("+kind+" time)", "Go hello-world", ratios, benchtable.AtMost(2),
				fmt.Sprintf("ms min/med/max: devmtls %s, hello-world %s", msSpread(od), msSpread(td)))
		}
	}
}
