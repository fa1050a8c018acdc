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

	"github.com/devmtls/devmtls/internal/benchtable"
	"github.com/devmtls/devmtls/internal/testenv"
)

// benchPeer is one way of reaching the mTLS echo pod through the API server.
type benchPeer struct {
	name string
	pid  int // the forwarding process (devmtls or kubectl); 0 when not measured
	dial func() (net.Conn, error)
}

// benchPeers starts, in s's namespace, a devmtls forward and a plain kubectl
// port-forward to svc/echo over the same API server transport
// (DEVMTLS_BENCH_TRANSPORT applies to both), and returns their clients:
//
//   - devmtls: TLS with the dev keypair to devmtls forward, which originates
//     mTLS to the pod with the cluster keypair;
//   - kubectl: the client doing mTLS end to end with the cluster keypair
//     through kubectl port-forward (what a user could do holding it).
//
// Every client resumes TLS sessions (a session cache per peer), as devmtls
// does toward the pod, so no peer compares a resumed handshake with a full one.
func benchPeers(b testing.TB, s *shop) (devmtls, kubectl benchPeer, kaddr string) {
	b.Helper()
	cmd := forwardCommand(s.c, s.dev.Dir, s.ns, "--transport", benchTransport(), "svc/echo", ":443")
	if dir := os.Getenv("DEVMTLS_BENCH_PROFILE"); dir != "" {
		// devmtls writes a CPU profile of the whole forward when it exits.
		cmd.Env = append(os.Environ(), "DEVMTLS_CPUPROFILE="+filepath.Join(dir, strings.ReplaceAll(b.Name(), "/", "_")+".pprof"))
	}
	f := runForward(b, cmd, 2)
	kaddr, kpid := s.c.kubectlPortForwardEnv(b, kubectlTransportEnv(), s.ns, "svc/echo", ":443")
	devAddr := f.ipv4(b, 0)
	devCfg := s.devClient()
	devCfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	clusterCfg := s.cluster.ClientConfig(s.cluster.Top, "localhost")
	clusterCfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	devmtls = benchPeer{"devmtls", f.cmd.Process.Pid, func() (net.Conn, error) { return tls.Dial("tcp", devAddr, devCfg) }}
	kubectl = benchPeer{"kubectl", kpid, func() (net.Conn, error) { return tls.Dial("tcp", kaddr, clusterCfg) }}
	return devmtls, kubectl, kaddr
}

// openEchoed dials p and has one byte echoed, so every leg (local TLS, the
// tunnel's stream, TLS to the pod, stunnel's own connect and handshake) is up
// before a timing window opens: all peers are timed the same way.
func openEchoed(p benchPeer) (net.Conn, error) {
	conn, err := p.dial()
	if err != nil {
		return nil, err
	}
	if err := pingEcho(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// pingEcho writes one byte and reads it back.
func pingEcho(conn net.Conn) error {
	if _, err := conn.Write([]byte{'x'}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var one [1]byte
	if _, err := io.ReadFull(conn, one[:]); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if one[0] != 'x' {
		return fmt.Errorf("echoed %q, sent 'x'", one[0])
	}
	return nil
}

// onlyPeers keeps the peers named in DEVMTLS_BENCH_PEERS (comma separated),
// for profiling one at a time with the others idle; ratios are then not
// reported.
func onlyPeers(peers []benchPeer) ([]benchPeer, bool) {
	only := os.Getenv("DEVMTLS_BENCH_PEERS")
	if only == "" {
		return peers, true
	}
	var kept []benchPeer
	for _, p := range peers {
		if slices.Contains(strings.Split(only, ","), p.name) {
			kept = append(kept, p)
		}
	}
	return kept, false
}

// BenchmarkForward compares, side by side in one run and through the same API
// server and the same mTLS echo pod, devmtls forward, kubectl port-forward
// with the client doing mTLS, and kubectl port-forward chained with an stunnel
// client doing the mTLS (the client speaking plain TCP to stunnel):
//
//   - throughput: 64 MiB echoed over one connection that is already up end to
//     end, verified by SHA-256;
//   - latency: time to the first echoed byte on a new connection (dial,
//     handshakes, one byte there and back), every client resuming sessions.
//
// A fourth peer, devmtls forward --local plain, is the stunnel chain's exact
// counterpart (plain on loopback, mTLS to the pod) and gets its own row.
//
// Each round measures every peer in a rotating order; the rows are the
// per-round ratios devmtls/peer (above 1: devmtls faster), min/median/max.
func BenchmarkForward(b *testing.B) {
	stunnel := testenv.LookPath(b, "stunnel4", "apt-get install stunnel4")
	s := newShop(b, false)
	s.c.deployMTLS(b, s.ns, "echo", 1, "echo")
	dev, kube, kaddr := benchPeers(b, s)
	saddr, stunnelPID := startStunnel(b, stunnel, kaddr, s)
	// devmtls with a plain loopback side is the stunnel chain's exact
	// counterpart: plain TCP in, mTLS to the pod out, one process instead of two.
	plain := runForward(b, forwardCommand(s.c, s.dev.Dir, s.ns, "--local", "plain", "--transport", benchTransport(), "svc/echo", ":443"), 2)
	plainAddr := plain.ipv4(b, 0)
	peers, ratios := onlyPeers([]benchPeer{dev, kube,
		{"stunnel", 0, func() (net.Conn, error) { return net.Dial("tcp", saddr) }},
		{"devmtls-plain", plain.cmd.Process.Pid, func() (net.Conn, error) { return net.Dial("tcp", plainAddr) }}})
	const size = 64 << 20
	const latencyConns = 20
	mbps := map[string][]float64{}
	latency := map[string][]float64{} // ms per connection
	// CPU of every process on the path (API server, kubelet, pod, forwarder,
	// stunnel, and this process's client) per MiB echoed, and the cores they
	// kept busy: on a machine where the path saturates the cores, throughput
	// follows the CPU each path needs, which is what the note explains.
	cpuPerMiB := map[string][]float64{}
	busyCores := map[string][]float64{}
	// The forwarding processes' share of that CPU: 1/(1-share) bounds how
	// much faster the path could get if the forwarder cost nothing.
	forwarderShare := map[string][]float64{}
	forwarders := map[string][]string{"devmtls": {"devmtls"}, "devmtls-plain": {"devmtls"}, "kubectl": {"kubectl"}, "stunnel": {"kubectl", "stunnel4"}}
	for i := 0; b.Loop(); i++ {
		for k := range peers {
			p := peers[(i+k)%len(peers)]
			conn, err := openEchoed(p)
			if err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			before := cpuOf(s.c.dir, workDir, dev.pid, kube.pid, stunnelPID, plain.cmd.Process.Pid)
			start := time.Now()
			if err := echoTransfer(conn, size, uint64(i)); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			took := time.Since(start)
			after := cpuOf(s.c.dir, workDir, dev.pid, kube.pid, stunnelPID, plain.cmd.Process.Pid)
			conn.Close()
			total := cpuTotal(before, after)
			mbps[p.name] = append(mbps[p.name], size/took.Seconds()/1e6)
			cpuPerMiB[p.name] = append(cpuPerMiB[p.name], float64(total.Milliseconds())/(size>>20))
			busyCores[p.name] = append(busyCores[p.name], total.Seconds()/took.Seconds())
			var own time.Duration
			for _, name := range forwarders[p.name] {
				own += max(after[name]-before[name], 0)
			}
			forwarderShare[p.name] = append(forwarderShare[p.name], own.Seconds()/total.Seconds())
			b.Logf("%s: %.1f MB/s; CPU ms during the 64 MiB echo: %s; all %d ms = %.2f cores busy",
				p.name, size/took.Seconds()/1e6, cpuSince(before, after), total.Milliseconds(), total.Seconds()/took.Seconds())

			start = time.Now()
			for range latencyConns {
				conn, err := openEchoed(p)
				if err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				conn.Close()
			}
			latency[p.name] = append(latency[p.name], float64(time.Since(start))/latencyConns/float64(time.Millisecond))
		}
	}
	for _, p := range peers {
		b.ReportMetric(benchtable.SpreadOf(mbps[p.name]).Median, p.name+"-MB/s")
		b.ReportMetric(benchtable.SpreadOf(latency[p.name]).Median, p.name+"-conn-ms")
	}
	if !ratios {
		return
	}
	note := func(unit string, m map[string][]float64, names ...string) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %s", n, benchtable.SpreadOf(m[n])))
		}
		return unit + " min/med/max: " + strings.Join(parts, ", ")
	}
	measure := fmt.Sprintf("one connection, 64 MiB echo (%s)", benchTransport())
	cpuNote := "; " + note("CPU ms/MiB, all processes,", cpuPerMiB, "devmtls", "kubectl", "stunnel") +
		"; " + note("cores busy", busyCores, "devmtls", "kubectl", "stunnel") +
		"; " + note("forwarder share of that CPU", forwarderShare, "devmtls", "kubectl", "stunnel")
	benchtable.Ratio(b, measure, "kubectl port-forward, client doing mTLS", divide(mbps["devmtls"], mbps["kubectl"]),
		benchtable.AtLeast(1.3), note("MB/s", mbps, "devmtls", "kubectl")+cpuNote)
	benchtable.Ratio(b, measure, "kubectl port-forward + stunnel", divide(mbps["devmtls"], mbps["stunnel"]),
		benchtable.AtLeast(1.6), note("MB/s", mbps, "devmtls", "stunnel"))
	benchtable.Ratio(b, measure+", devmtls --local plain", "kubectl port-forward + stunnel (both plain on loopback)", divide(mbps["devmtls-plain"], mbps["stunnel"]),
		benchtable.AtLeast(1.6), note("MB/s", mbps, "devmtls-plain", "stunnel")+"; "+note("CPU ms/MiB, all processes,", cpuPerMiB, "devmtls-plain", "stunnel"))
	benchtable.Ratio(b, fmt.Sprintf("time to first echoed byte, new connection (%s)", benchTransport()), "kubectl port-forward, client doing mTLS",
		divide(latency["kubectl"], latency["devmtls"]), benchtable.AtLeast(1.0), note("ms", latency, "devmtls", "kubectl", "stunnel"))
	b.ReportMetric(benchtable.SpreadOf(divide(mbps["devmtls"], mbps["kubectl"])).Median, "throughput-x-kubectl")
	b.ReportMetric(benchtable.SpreadOf(divide(mbps["devmtls"], mbps["stunnel"])).Median, "throughput-x-stunnel")
	b.ReportMetric(benchtable.SpreadOf(divide(latency["kubectl"], latency["devmtls"])).Median, "latency-x-kubectl")
}

// divide is a[i]/b[i], one ratio per round.
func divide(a, b []float64) []float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return r
}

// BenchmarkForwardParallel compares the aggregate throughput of 8
// connections echoing at once (16 MiB each, SHA-256 verified) through devmtls
// forward and through kubectl port-forward with 8 clients doing mTLS,
// alternating which goes first. Row: devmtls/kubectl per round.
func BenchmarkForwardParallel(b *testing.B) {
	const conns = 8
	const size = 16 << 20
	s := newShop(b, false)
	s.c.deployMTLS(b, s.ns, "echo", 1, "echo")
	dev, kube, _ := benchPeers(b, s)
	peers, ratios := onlyPeers([]benchPeer{dev, kube})
	mbps := map[string][]float64{}
	cpuPerMiB := map[string][]float64{} // as in BenchmarkForward
	busyCores := map[string][]float64{}
	for i := 0; b.Loop(); i++ {
		for k := range peers {
			p := peers[(i+k)%len(peers)]
			open := make([]net.Conn, conns)
			for j := range open {
				c, err := openEchoed(p)
				if err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				open[j] = c
			}
			errs := make(chan error, conns)
			before := cpuOf(s.c.dir, workDir, dev.pid, kube.pid)
			start := time.Now()
			var wg sync.WaitGroup
			for j, c := range open {
				wg.Go(func() { errs <- echoTransfer(c, size, uint64(i*conns+j)) })
			}
			wg.Wait()
			took := time.Since(start)
			after := cpuOf(s.c.dir, workDir, dev.pid, kube.pid)
			total := cpuTotal(before, after)
			cpuPerMiB[p.name] = append(cpuPerMiB[p.name], float64(total.Milliseconds())/(conns*size>>20))
			busyCores[p.name] = append(busyCores[p.name], total.Seconds()/took.Seconds())
			b.Logf("%s: %.1f MB/s; CPU ms: %s; all %d ms = %.2f cores busy",
				p.name, conns*size/took.Seconds()/1e6, cpuSince(before, after), total.Milliseconds(), total.Seconds()/took.Seconds())
			close(errs)
			for err := range errs {
				if err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
			}
			for _, c := range open {
				c.Close()
			}
			mbps[p.name] = append(mbps[p.name], conns*size/took.Seconds()/1e6)
		}
	}
	for _, p := range peers {
		b.ReportMetric(benchtable.SpreadOf(mbps[p.name]).Median, p.name+"-MB/s")
	}
	if !ratios {
		return
	}
	r := divide(mbps["devmtls"], mbps["kubectl"])
	b.ReportMetric(benchtable.SpreadOf(r).Median, "throughput-x-kubectl")
	benchtable.Ratio(b, fmt.Sprintf("8 connections at once, aggregate (%s)", benchTransport()), "kubectl port-forward, 8 clients doing mTLS", r,
		benchtable.AtLeast(1.5), fmt.Sprintf("MB/s min/med/max: devmtls %s, kubectl %s; CPU ms/MiB, all processes: devmtls %s, kubectl %s; cores busy: devmtls %s, kubectl %s",
			benchtable.SpreadOf(mbps["devmtls"]), benchtable.SpreadOf(mbps["kubectl"]), benchtable.SpreadOf(cpuPerMiB["devmtls"]), benchtable.SpreadOf(cpuPerMiB["kubectl"]),
			benchtable.SpreadOf(busyCores["devmtls"]), benchtable.SpreadOf(busyCores["kubectl"])))
}

// startStunnel runs an stunnel client: plain TCP in, mTLS with the cluster
// keypair out to addr, and returns its address and process ID. stunnel
// caches and resumes client sessions by default, as the other peers' clients
// do.
func startStunnel(b testing.TB, bin, addr string, s *shop) (string, int) {
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
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, path)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", local); err == nil {
			c.Close()
			return local, cmd.Process.Pid
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("stunnel did not start")
	return "", 0
}

// benchTransport lets a run compare API server transports
// (DEVMTLS_BENCH_TRANSPORT=spdy|websocket|auto; default auto, like kubectl).
// It applies to devmtls (--transport) and to kubectl (kubectlTransportEnv).
func benchTransport() string {
	if t := os.Getenv("DEVMTLS_BENCH_TRANSPORT"); t != "" {
		return t
	}
	return "auto"
}

// kubectlTransportEnv is kubectl's environment for benchTransport:
// KUBECTL_PORT_FORWARD_WEBSOCKETS=false makes kubectl use SPDY; true forces
// its WebSocket path (the default since 1.31, with SPDY fallback, = auto).
func kubectlTransportEnv() []string {
	switch benchTransport() {
	case "spdy":
		return []string{"KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}
	case "websocket":
		return []string{"KUBECTL_PORT_FORWARD_WEBSOCKETS=true"}
	}
	return nil
}

// BenchmarkForwardMemory compares the memory of devmtls forward and kubectl
// port-forward (same API server, same mTLS echo pod) while each holds 200 open
// connections that have each echoed 256 KiB: what a busy local client pool
// costs. Both the resident set while holding them (VmRSS) and its peak during
// the round (VmHWM, reset through /proc/PID/clear_refs before each round, so
// buffers dropped once idle do not flatter anyone) are reported, as
// devmtls/kubectl per round.
func BenchmarkForwardMemory(b *testing.B) {
	const conns = 200
	const perConn = 256 << 10
	s := newShop(b, false)
	s.c.deployMTLS(b, s.ns, "echo", 1, "echo")
	dev, kube, _ := benchPeers(b, s)
	peers := []benchPeer{dev, kube}
	rss := map[string][]float64{}
	hwm := map[string][]float64{}
	for i := 0; b.Loop(); i++ {
		for k := range peers {
			p := peers[(i+k)%len(peers)]
			resetPeak(b, p.pid)
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
			rss[p.name] = append(rss[p.name], float64(procStatus(b, p.pid, "VmRSS"))/(1<<20))
			hwm[p.name] = append(hwm[p.name], float64(procStatus(b, p.pid, "VmHWM"))/(1<<20))
			for _, c := range held {
				c.Close()
			}
		}
	}
	for _, p := range peers {
		b.ReportMetric(benchtable.SpreadOf(rss[p.name]).Median, p.name+"-RSS-MiB")
		b.ReportMetric(benchtable.SpreadOf(hwm[p.name]).Median, p.name+"-HWM-MiB")
	}
	b.ReportMetric(benchtable.SpreadOf(divide(rss["devmtls"], rss["kubectl"])).Median, "rss-x-kubectl")
	b.ReportMetric(benchtable.SpreadOf(divide(hwm["devmtls"], hwm["kubectl"])).Median, "hwm-x-kubectl")
	benchtable.Ratio(b, "memory (VmRSS), 200 open connections, 256 KiB echoed each", "kubectl port-forward", divide(rss["devmtls"], rss["kubectl"]),
		benchtable.AtMost(1.1), fmt.Sprintf("MiB min/med/max: devmtls %s, kubectl %s", benchtable.SpreadOf(rss["devmtls"]), benchtable.SpreadOf(rss["kubectl"])))
	benchtable.Ratio(b, "memory peak (VmHWM), same round", "kubectl port-forward", divide(hwm["devmtls"], hwm["kubectl"]),
		benchtable.AtMost(1.1), fmt.Sprintf("MiB min/med/max: devmtls %s, kubectl %s", benchtable.SpreadOf(hwm["devmtls"]), benchtable.SpreadOf(hwm["kubectl"])))
}

// BenchmarkForwardManyConnections opens 2000 connections through one devmtls
// forward, has each echo one byte (so all 2000 are up end to end at once),
// then has all of them echo 64 KiB concurrently, each verified by SHA-256. It
// reports the memory each connection costs: VmRSS with all open, and the
// peak (VmHWM) during the transfers, over the idle forward's VmRSS.
func BenchmarkForwardManyConnections(b *testing.B) {
	const conns = 2000
	const size = 64 << 10
	s := newShop(b, false)
	s.c.deployMTLS(b, s.ns, "echo", 1, "echo")
	dev, _, _ := benchPeers(b, s)
	var held, peak []float64 // KiB per connection
	// Against the idle forward before the first round: the Go runtime returns
	// freed memory to the system slowly, so a base read again before later
	// rounds would include the previous round's and show ~0 or less.
	base := procStatus(b, dev.pid, "VmRSS")
	for i := 0; b.Loop(); i++ {
		resetPeak(b, dev.pid)
		open := make([]net.Conn, conns)
		errs := make(chan error, conns)
		sem := make(chan struct{}, 64) // bounded dialling: the accept backlog is finite
		var wg sync.WaitGroup
		for j := range open {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				c, err := openEchoed(dev)
				open[j] = c
				errs <- err
			})
		}
		wg.Wait()
		for range conns {
			if err := <-errs; err != nil {
				b.Fatalf("connection: %v", err)
			}
		}
		held = append(held, float64(procStatus(b, dev.pid, "VmRSS")-base)/1024/conns)
		for j, c := range open {
			wg.Go(func() { errs <- echoTransfer(c, size, uint64(i*conns+j)) })
		}
		wg.Wait()
		verified := 0
		for range conns {
			if err := <-errs; err != nil {
				b.Fatalf("after %d verified: %v", verified, err)
			}
			verified++
		}
		peak = append(peak, float64(procStatus(b, dev.pid, "VmHWM")-base)/1024/conns)
		for _, c := range open {
			c.Close()
		}
	}
	h, p := benchtable.SpreadOf(held), benchtable.SpreadOf(peak)
	b.ReportMetric(h.Median, "KiB/conn-held")
	b.ReportMetric(p.Median, "KiB/conn-peak")
	benchtable.Value(b, "2000 concurrent connections through one forward, 64 KiB verified each",
		fmt.Sprintf("all %d verified", conns), "all verified", "met",
		fmt.Sprintf("KiB/connection min/med/max: held (VmRSS) %.1f/%.1f/%.1f, peak (VmHWM) %.1f/%.1f/%.1f", h.Min, h.Median, h.Max, p.Min, p.Median, p.Max))
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

// resetPeak resets a process's VmHWM to its current VmRSS (Linux ≥ 4.0), so
// the next reading is the peak of what follows.
func resetPeak(b testing.TB, pid int) {
	b.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak RSS of %d: %v", pid, err)
	}
}

// procStatus is a size field (VmRSS, VmHWM) of /proc/PID/status, in bytes.
func procStatus(b testing.TB, pid int, field string) int64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// cpuOf is the CPU time (user + system) used so far by each process that
// serves a forwarded connection: the cluster's (kube-apiserver, the test
// kubelet, the echo pod: their command lines name clusterDir or binDir), the
// given forwarder PIDs and this process ("client"), keyed by program name. Where the time of a
// throughput run goes, read in the same run as the run itself.
func cpuOf(clusterDir, binDir string, pids ...int) map[string]time.Duration {
	const tick = 10 * time.Millisecond // USER_HZ: 100 on Linux
	out := map[string]time.Duration{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		self := pid == os.Getpid() // the benchmark's own clients
		ours := slices.Contains(pids, pid) || self
		if !ours && !bytes.Contains(cmdline, []byte(clusterDir)) && !bytes.Contains(cmdline, []byte(binDir)) {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name in parentheses: utime and stime
		// are the 12th and 13th.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		name := filepath.Base(string(bytes.SplitN(cmdline, []byte{0}, 2)[0]))
		if self {
			name = "client"
		}
		out[name] += time.Duration(u+st) * tick
	}
	return out
}

// cpuTotal is the CPU all processes used between two cpuOf readings.
func cpuTotal(before, after map[string]time.Duration) time.Duration {
	var total time.Duration
	for name, t := range after {
		total += max(t-before[name], 0)
	}
	return total
}

// cpuSince prints the CPU each program used between two cpuOf readings.
func cpuSince(before, after map[string]time.Duration) string {
	var parts []string
	for name, t := range after {
		if d := t - before[name]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, d.Milliseconds()))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
