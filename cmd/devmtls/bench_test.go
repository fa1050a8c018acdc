package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testenv"
)

// BenchmarkCertsVsOpenSSL times the whole `devmtls certs` process creating a
// fresh environment against the way such a keypair is usually made by hand,
// `openssl req -x509 -newkey rsa:4096 -days 3650 -nodes`, alternating the two in
// one run so machine noise hits both. It reports each median-free mean and the
// ratio openssl/devmtls ("x-faster").
func BenchmarkCertsVsOpenSSL(b *testing.B) {
	openssl := testenv.LookPath(b, "openssl", "apt-get install openssl")
	var ours, theirs time.Duration
	for i := 0; b.Loop(); i++ {
		dir := b.TempDir()
		start := time.Now()
		if out, err := exec.Command(devmtlsBin, "--dir", filepath.Join(dir, "env"), "certs").CombinedOutput(); err != nil {
			b.Fatalf("devmtls certs: %v\n%s", err, out)
		}
		ours += time.Since(start)
		start = time.Now()
		cmd := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:4096", "-keyout", filepath.Join(dir, "key.pem"),
			"-out", filepath.Join(dir, "cert.pem"), "-sha256", "-days", "3650", "-nodes", "-subj", "/CN=dev.example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("openssl req: %v\n%s", err, out)
		}
		theirs += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(ours.Milliseconds())/n, "devmtls-ms/op")
	b.ReportMetric(float64(theirs.Milliseconds())/n, "openssl-ms/op")
	b.ReportMetric(float64(theirs)/float64(ours), "x-faster")
}
