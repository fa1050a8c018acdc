package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testenv"
)

// BenchmarkForward compares, side by side in one run and through the same API
// server and the same mTLS echo pod:
//
//   - devmtls: devmtls forward, TLS on both sides (dev keypair locally,
//     cluster keypair to the pod);
//   - kubectl: plain kubectl port-forward, the client doing mTLS end to end
//     with the cluster keypair (what a user could do if they held it);
//   - stunnel: kubectl port-forward chained with an stunnel client doing the
//     mTLS, the client speaking plain TCP to stunnel.
//
// It reports echo throughput (MB/s, one direction) over one connection and the
// latency of a new connection (connect, handshakes, one byte echoed), and the
// ratios devmtls/kubectl and devmtls/stunnel (above 1 means devmtls is faster).
func BenchmarkForward(b *testing.B) {
	stunnel := testenv.LookPath(b, "stunnel4", "apt-get install stunnel4")
	s := newShop(b, false)
	s.c.deployMTLS(b, s.ns, "echo", 1, "echo")
	f := s.forward(b, 2, "--transport", benchTransport(), "svc/echo", ":443")
	kaddr, _ := s.c.kubectlPortForward(b, s.ns, "svc/echo", ":443")
	saddr := startStunnel(b, stunnel, kaddr, s)

	dialDevmtls, dialKubectl := benchDialers(b, s, f, kaddr)
	peers := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"devmtls", dialDevmtls},
		{"kubectl", dialKubectl},
		{"stunnel", func() (net.Conn, error) { return net.Dial("tcp", saddr) }},
	}
	if only := os.Getenv("DEVMTLS_BENCH_PEERS"); only != "" {
		// Profiling one peer at a time (pidstat, perf) needs the others idle;
		// the ratios are then not reported.
		kept := peers[:0]
		for _, p := range peers {
			if slices.Contains(strings.Split(only, ","), p.name) {
				kept = append(kept, p)
			}
		}
		peers = kept
	}
	const size = 64 << 20
	const latencyConns = 20
	bytes := map[string]float64{}
	busy := map[string]time.Duration{}
	latency := map[string]time.Duration{}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Rotate the order: whoever runs first after the latency loop of
		// another peer is measured differently.
		for k := range peers {
			p := peers[(i+k)%len(peers)]
			conn, err := p.dial()
			if err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			start := time.Now()
			if err := echoTransfer(conn, size, uint64(i)); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			took := time.Since(start)
			busy[p.name] += took
			b.Logf("%s: %.1f MB/s", p.name, size/took.Seconds()/1e6)
			bytes[p.name] += size
			conn.Close()

			start = time.Now()
			for range latencyConns {
				conn, err := p.dial()
				if err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				if err := echoTransfer(conn, 1, 0); err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				conn.Close()
			}
			latency[p.name] += time.Since(start) / latencyConns
		}
	}
	n := float64(b.N)
	mbps := func(p string) float64 { return bytes[p] / busy[p].Seconds() / 1e6 }
	for _, p := range peers {
		b.ReportMetric(mbps(p.name), p.name+"-MB/s")
		b.ReportMetric(float64(latency[p.name].Microseconds())/n/1000, p.name+"-conn-ms")
	}
	if len(peers) < 3 {
		return
	}
	b.ReportMetric(mbps("devmtls")/mbps("kubectl"), "throughput-x-kubectl")
	b.ReportMetric(mbps("devmtls")/mbps("stunnel"), "throughput-x-stunnel")
	b.ReportMetric(float64(latency["kubectl"])/float64(latency["devmtls"]), "latency-x-kubectl")
	b.ReportMetric(float64(latency["stunnel"])/float64(latency["devmtls"]), "latency-x-stunnel")
}

// benchDialers are the clients both forward benchmarks compare: the dev
// keypair toward devmtls forward, and the cluster keypair straight to the pod
// through kubectl port-forward at kaddr.
func benchDialers(b testing.TB, s *shop, f *forward, kaddr string) (devmtls, kubectl func() (net.Conn, error)) {
	devAddr := f.ipv4(b, 0)
	devmtls = func() (net.Conn, error) { return tls.Dial("tcp", devAddr, s.devClient()) }
	kubectl = func() (net.Conn, error) {
		return tls.Dial("tcp", kaddr, s.cluster.ClientConfig(s.cluster.Top, "localhost"))
	}
	return devmtls, kubectl
}

// startStunnel runs an stunnel client: plain TCP in, mTLS with the cluster
// keypair out to addr.
func startStunnel(b testing.TB, bin, addr string, s *shop) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	local := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`foreground = yes
pid =
[echo]
client = yes
accept = %s
connect = %s
cert = %s
key = %s
CAfile = %s
verifyPeer = yes
`, local, addr, s.cluster.Top.Paths.Cert, s.cluster.Top.Paths.Key, s.cluster.Top.Paths.Cert)
	path := filepath.Join(b.TempDir(), "stunnel.conf")
	os.WriteFile(path, []byte(cfg), 0o600)
	cmd := exec.Command(bin, path)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", local); err == nil {
			c.Close()
			return local
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("stunnel did not start")
	return ""
}

// benchTransport lets a run compare API server transports
// (DEVMTLS_BENCH_TRANSPORT=spdy|websocket|auto; default auto, like kubectl).
func benchTransport() string {
	if t := os.Getenv("DEVMTLS_BENCH_TRANSPORT"); t != "" {
		return t
	}
	return "auto"
}

// BenchmarkForwardMemory compares the resident memory of devmtls forward and
// kubectl port-forward (same API server, same mTLS echo pod) while each holds
// the same number of open connections that have each echoed some data: what a
// busy local client pool costs. Reported in MiB and as devmtls/kubectl.
func BenchmarkForwardMemory(b *testing.B) {
	const conns = 200
	const perConn = 256 << 10
	s := newShop(b, false)
	s.c.deployMTLS(b, s.ns, "echo", 1, "echo")
	f := s.forward(b, 2, "--transport", benchTransport(), "svc/echo", ":443")
	kaddr, kpid := s.c.kubectlPortForward(b, s.ns, "svc/echo", ":443")
	dialDevmtls, dialKubectl := benchDialers(b, s, f, kaddr)
	peers := []struct {
		name string
		pid  int
		dial func() (net.Conn, error)
	}{
		{"devmtls", f.cmd.Process.Pid, dialDevmtls},
		{"kubectl", kpid, dialKubectl},
	}
	rss := map[string]float64{}
	for b.Loop() {
		for _, p := range peers {
			held := make([]net.Conn, 0, conns)
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for range conns {
				wg.Go(func() {
					conn, err := p.dial()
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					held = append(held, conn)
					mu.Unlock()
					errs <- echoHold(conn, perConn)
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
			}
			rss[p.name] += float64(residentBytes(b, p.pid)) / (1 << 20)
			for _, c := range held {
				c.Close()
			}
		}
	}
	n := float64(b.N)
	for _, p := range peers {
		b.ReportMetric(rss[p.name]/n, p.name+"-RSS-MiB")
	}
	b.ReportMetric(rss["devmtls"]/rss["kubectl"], "rss-x-kubectl")
}

// echoHold sends n bytes, reads them back and leaves the connection open.
func echoHold(conn net.Conn, n int) error {
	sent := make([]byte, n)
	for i := range sent {
		sent[i] = byte(i * 7)
	}
	werr := make(chan error, 1)
	go func() { _, err := conn.Write(sent); werr <- err }()
	got := make([]byte, n)
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if !bytes.Equal(sent, got) {
		return fmt.Errorf("echo differs from what was sent")
	}
	return nil
}

// residentBytes is a process's current resident set size (VmRSS).
func residentBytes(b testing.TB, pid int) int64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
