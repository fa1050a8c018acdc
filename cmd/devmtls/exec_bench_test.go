package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkExecStartup compares `devmtls exec -- true` (ensure the
// credentials under the lock, verify them, start and wait for the child) with
// env(1) running the same command and with `devmtls version` (process start-up
// alone), side by side in one run. Report the ratio
// of the two ns/op figures, never the absolute time.
func BenchmarkExecStartup(b *testing.B) {
	dir := filepath.Join(b.TempDir(), ".devmtls")
	if out, err := exec.Command(devmtlsBin, "--dir", dir, "certs").CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"env", []string{"env", "MTLS_CERT=x", "true"}},
		// The binary's own start-up, the floor for any devmtls command.
		{"devmtls-version", []string{devmtlsBin, "version"}},
		{"devmtls-exec", []string{devmtlsBin, "--dir", dir, "exec", "--", "true"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := exec.Command(c.argv[0], c.argv[1:]...).Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
