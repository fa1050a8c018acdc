package portforward

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"testing"
	"time"
)

// TestMemoryPerConnection holds 200 forwarded connections that have each
// echoed 256 KiB (what BenchmarkForwardMemory in test/e2e does through a real
// cluster) and reports what each costs the Forwarder: heap in use, stacks and
// goroutines, measured after a GC with every connection still open and past
// relayIdleRelease. The fake kubelet's streams and the pods' TLS servers run
// in this process too; their share is measured with the Forwarder's relays
// idle, so the bound covers the whole rig: generous, but it fails when a
// buffer per connection comes back (a batch or chunk kept after idling costs
// 32-256 KiB per connection, well over the bound). DEVMTLS_MEMPROFILE names a
// file for the heap profile.
func TestMemoryPerConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 200 connections")
	}
	const conns = 200
	const perConn = 256 << 10
	r := newRig(t)
	r.addPod("orders-0", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	warm := r.dial()
	if err := echoed(warm, 1); err != nil {
		t.Fatal(err)
	}
	before := measure()
	held := make([]*tls.Conn, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range held {
		held[i] = r.dial()
		wg.Go(func() { errs <- echoed(held[i], perConn) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	peak := measure()
	time.Sleep(2 * relayIdleRelease)
	after := measure()
	if path := os.Getenv("DEVMTLS_MEMPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / conns / 1024 }
	t.Logf("per connection (whole rig: forwarder, fake kubelet, pod servers, clients):")
	t.Logf("  right after the echoes: heap %.1f KiB, stacks %.1f KiB, goroutines %.1f",
		per(peak.heap, before.heap), per(peak.stack, before.stack), float64(peak.goroutines-before.goroutines)/conns)
	t.Logf("  idle: heap %.1f KiB, stacks %.1f KiB, goroutines %.1f",
		per(after.heap, before.heap), per(after.stack, before.stack), float64(after.goroutines-before.goroutines)/conns)
	t.Logf("  process: HeapSys %.1f MiB, HeapInuse %.1f MiB, StackInuse %.1f MiB, Sys %.1f MiB",
		float64(after.heapSys)/(1<<20), float64(after.heap)/(1<<20), float64(after.stack)/(1<<20), float64(after.sys)/(1<<20))
	// Bounds for the whole rig, measured at about 620 KiB and 8 goroutines
	// per connection (750 KiB before idle relays stopped holding chunks):
	// generous, but a batch or chunk buffer kept per idle relay again (32-256
	// KiB each, two relays per connection), or goroutines leaking per
	// connection, break them.
	if heap := per(after.heap, before.heap); heap > 1024 {
		t.Errorf("%.1f KiB of heap per idle open connection; want at most 1024", heap)
	}
	if g := float64(after.goroutines-before.goroutines) / conns; g > 9 {
		t.Errorf("%.1f goroutines per open connection; want at most 9", g)
	}
	for _, c := range held {
		c.Close()
	}
}

type memSample struct {
	heap, stack, heapSys, sys uint64
	goroutines                int
}

func measure() memSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heap: m.HeapInuse, stack: m.StackInuse, heapSys: m.HeapSys, sys: m.Sys, goroutines: runtime.NumGoroutine()}
}

// TestForwardEchoThroughput echoes 64 MiB through one forwarded connection
// of the rig, verified, and reports the rate (not asserted: the machine is
// shared), so that changes made for memory can be seen not to slow a single
// transfer.
func TestForwardEchoThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB")
	}
	r := newRig(t)
	r.addPod("orders-0", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	c := r.dial()
	const size = 64 << 20
	cpu := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(cpu)
	gc0, all0, cycles0 := cpu[0].Value.Float64(), cpu[1].Value.Float64(), cpu[2].Value.Uint64()
	start := time.Now()
	if err := echoed(c, size); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	metrics.Read(cpu)
	// The GC's share of CPU is what a lower GOGC would raise: report it with
	// the rate (the runtime's accounting, so only roughly).
	t.Logf("64 MiB echoed in %v: %.0f MiB/s; GC %d cycles, %.1f%% of the process's CPU (GOGC=%s)", elapsed.Round(time.Millisecond),
		size/(1<<20)/elapsed.Seconds(), cpu[2].Value.Uint64()-cycles0, 100*(cpu[0].Value.Float64()-gc0)/(cpu[1].Value.Float64()-all0), os.Getenv("GOGC"))
}

// readSizes records the size of the buffer each Read is given.
type readSizes struct {
	net.Conn
	mu    sync.Mutex
	sizes []int
}

func (r *readSizes) Read(p []byte) (int, error) {
	r.mu.Lock()
	r.sizes = append(r.sizes, len(p))
	r.mu.Unlock()
	return r.Conn.Read(p)
}

func (r *readSizes) last() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sizes[len(r.sizes)-1]
}

// TestRelayWaitsWithoutAChunk: a relay whose source has gone quiet after a
// read that did not fill its chunk waits in a read of its small buffer, not
// of a whole chunk, so an open idle connection keeps no chunk; a transfer
// still reads whole chunks. (A transfer that ends exactly at a chunk's end
// still waits in a whole chunk: nothing tells the relay it has ended.)
func TestRelayWaitsWithoutAChunk(t *testing.T) {
	dst, reader := tcpPair(t)
	srcEnd, writer := tcpPair(t)
	src := &readSizes{Conn: srcEnd}
	done := make(chan error, 1)
	go func() { done <- relay(dst, src, nil, &batchBudget{}, nil) }()
	const size = 1<<20 + 100
	sent := make([]byte, size)
	rand.Read(sent)
	go writer.Write(sent)
	got := make([]byte, size)
	if _, err := io.ReadFull(reader, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("relayed bytes differ from those sent")
	}
	eventually(t, "the relay waits for more", func() bool { return src.last() <= relayFirstRead })
	src.mu.Lock()
	whole := 0
	for _, n := range src.sizes {
		if n == socketChunkSize {
			whole++
		}
	}
	src.mu.Unlock()
	if whole < size/socketChunkSize/2 {
		t.Errorf("%d reads of a whole chunk for %d bytes: the transfer read in small pieces", whole, size)
	}
	writer.Close()
	if err := <-done; err != nil {
		t.Errorf("relay after its source ended: %v", err)
	}
}
