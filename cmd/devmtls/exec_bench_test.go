package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/benchtable"
)

// BenchmarkExecStartup compares `devmtls exec -- true` (ensure the
// credentials under the lock, verify them, start and wait for the child) with
// env(1) running the same command and with `devmtls version` (process start-up
// alone), the three alternating in each round. It reports the ratios
// exec/env and exec/version with their spread, never an absolute time as the
// result.
func BenchmarkExecStartup(b *testing.B) {
	dir := filepath.Join(b.TempDir(), ".devmtls")
	timeRun(b, devmtlsBin, "--dir", dir, "certs")
	peers := []struct {
		name string
		argv []string
	}{
		{"env", []string{"env", "MTLS_CERT=x", "true"}},
		// The binary's own start-up, the floor for any devmtls command.
		{"devmtls-version", []string{devmtlsBin, "version"}},
		{"devmtls-exec", []string{devmtlsBin, "--dir", dir, "exec", "--", "true"}},
	}
	took := map[string][]time.Duration{}
	n := 0
	for b.Loop() {
		for range benchRounds * 2 {
			for k := range peers {
				p := peers[(n+k)%len(peers)]
				took[p.name] = append(took[p.name], timeRun(b, p.argv...))
			}
			n++
		}
	}
	exec := took["devmtls-exec"]
	for _, peer := range []string{"env", "devmtls-version"} {
		ratios := make([]float64, len(exec))
		for i := range exec {
			ratios[i] = float64(exec[i]) / float64(took[peer][i])
		}
		b.ReportMetric(benchtable.SpreadOf(ratios).Median, "exec-x-"+peer)
		benchtable.Ratio(b, "devmtls exec -- true, whole process (time ratio)", peer, ratios, benchtable.Target{},
			fmt.Sprintf("ms min/med/max: exec %s, %s %s", msSpread(exec), peer, msSpread(took[peer])))
	}
}
