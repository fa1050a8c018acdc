package hybrid

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/internal/envdir"
)

// Ensure starts the forwards process for a spec, reuses it for the same
// spec, replaces it (stopping the old one) for another, and Stop ends it.
// The process is this test binary in its stand-in role (helperDaemon).
func TestEnsureStartsReusesAndReplaces(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the lock holder is read from /proc/locks")
	}
	dir := newEnv(t)
	t.Setenv(helperDaemon, dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { Stop(ctx, dir) })
	spec := Spec{Forwards: []forwards.Forward{forward("pricing", 443)}, HostPorts: HostPorts{"pricing": {443: 20443}}}

	first, started, err := Ensure(ctx, dir, spec, exe)
	if err != nil || !started || first.SpecHash != spec.Hash() {
		t.Fatalf("first Ensure: %+v started=%v %v", first, started, err)
	}
	again, started, err := Ensure(ctx, dir, spec, exe)
	if err != nil || started || again.PID != first.PID {
		t.Fatalf("Ensure of the same spec: pid %d started=%v %v; want process %d reused", again.PID, started, err, first.PID)
	}
	written, err := readSpec(mustOpen(t, dir))
	if err != nil || written.Hash() != spec.Hash() {
		t.Fatalf("spec.json: %+v %v", written, err)
	}

	spec.HostPorts = HostPorts{"pricing": {443: 20444}}
	replaced, started, err := Ensure(ctx, dir, spec, exe)
	if err != nil || !started || replaced.PID == first.PID || replaced.SpecHash != spec.Hash() {
		t.Fatalf("Ensure of another spec: %+v started=%v %v", replaced, started, err)
	}
	if old, err := os.FindProcess(first.PID); err == nil {
		for i := 0; alive(old); i++ {
			if i == 250 {
				t.Fatalf("the replaced process %d still runs", first.PID)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	if stopped, err := Stop(ctx, dir); err != nil || !stopped {
		t.Fatalf("Stop = %v, %v", stopped, err)
	}
	if st, err := Read(dir); err != nil || st != nil {
		t.Fatalf("Read after Stop = %+v, %v; want nothing running", st, err)
	}
}

func mustOpen(t *testing.T, dir string) *envdir.Dir {
	t.Helper()
	d, err := envdir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
