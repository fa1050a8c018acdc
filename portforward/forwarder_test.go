package portforward

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

// TestForwardSharesOneSessionPerPod: connections to one Ready pod share one
// stream connection, each gets its own stream pair and gives it back, and a
// pod that finishes gets the client a clean end.
func TestForwardSharesOneSessionPerPod(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	a, b := r.dial(), r.dial()
	for i, c := range []net.Conn{a, b, a} {
		if err := echoed(c, 1<<20); err != nil {
			t.Fatalf("connection %d: %v\n%s", i, err, r.logs)
		}
	}
	if n := r.kubelet.dialsTo("orders-a"); n != 1 {
		t.Errorf("%d stream connections to orders-a for two local connections; want one shared", n)
	}
	for _, c := range []*tls.Conn{a, b} {
		c.CloseWrite()
		if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
			t.Errorf("after the pod finished: %q, %v; want a clean end", rest, err)
		}
	}
	conn := r.kubelet.connsTo("orders-a")[0]
	eventually(t, "the finished connections give their streams back", func() bool { return conn.openStreams() == 0 })
	if conn.isDone() {
		t.Error("the session of a Ready pod was closed when its connections ended")
	}
	if st := r.f.Status(); len(st) != 1 || st[0].Pod != "orders-a" || st[0].Total != 2 {
		t.Errorf("status %+v", st)
	}
}

// TestForwardResolvesAgainAfterPodLoss: when the pod goes, its session
// closes at once and the next connection goes to the replacement.
func TestForwardResolvesAgainAfterPodLoss(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	if err := echoed(r.dial(), 4096); err != nil {
		t.Fatal(err)
	}
	r.deletePod("orders-a")
	old := r.kubelet.connsTo("orders-a")[0]
	eventually(t, "the session of a deleted pod closes", old.isDone)
	r.addPod("orders-b", true)
	if err := echoed(r.dial(), 4096); err != nil {
		t.Fatalf("after the pod was replaced: %v\n%s", err, r.logs)
	}
	if n := r.kubelet.dialsTo("orders-b"); n != 1 {
		t.Errorf("%d stream connections to the replacement; want 1", n)
	}
	if st := r.f.Status(); st[0].Pod != "orders-b" {
		t.Errorf("status names pod %q, want orders-b", st[0].Pod)
	}
}

// TestForwardWaitsForAReadyPod: a connection that arrives while no pod is
// Ready is held, not refused, and served once a pod is Ready.
func TestForwardWaitsForAReadyPod(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	r.setReady("orders-a", false)
	first := r.kubelet.connsTo("orders-a")[0]
	eventually(t, "the session of a pod that is no longer Ready and has no connection closes", first.isDone)

	c := r.dial()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("with no Ready pod the connection answered %d bytes, %v; want it held", n, err)
	}
	c.SetReadDeadline(time.Time{})
	r.setReady("orders-a", true)
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("once the pod was Ready: %q, %v\n%s", got, err, r.logs)
	}
	if n := r.kubelet.dialsTo("orders-a"); n != 2 {
		t.Errorf("%d stream connections to orders-a; want a second one once it was Ready again", n)
	}
}

// TestForwardSaysNoPodIsReady: waiting ends after --pod-running-timeout with a
// sentence naming the pods and their state.
func TestForwardSaysNoPodIsReady(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", false)
	err := r.start(func(o *Options) { o.PodRunningTimeout = 50 * time.Millisecond })
	want := `no Ready pod for svc/orders in namespace "shop" after waiting 50ms (orders-a Running, not Ready); see kubectl get pods -n shop -l app=orders`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestForwardLetsInFlightConnectionsFinishOnANotReadyPod: a pod that stops
// being Ready takes no new connection, keeps serving the ones it has, and its
// stream connection is released when the last of them ends.
func TestForwardLetsInFlightConnectionsFinishOnANotReadyPod(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	inflight := r.dial()
	if err := echoed(inflight, 4096); err != nil {
		t.Fatal(err)
	}
	r.addPod("orders-b", true)
	r.setReady("orders-a", false)
	eventually(t, "the not-Ready pod's session is set aside", func() bool {
		r.f.targets[0].mu.Lock()
		defer r.f.targets[0].mu.Unlock()
		return r.f.targets[0].sessions["orders-a"] == nil
	})
	if err := echoed(r.dial(), 4096); err != nil {
		t.Fatal(err)
	}
	if n := r.kubelet.dialsTo("orders-b"); n != 1 {
		t.Errorf("a new connection made %d stream connections to orders-b; want 1", n)
	}
	if err := echoed(inflight, 4096); err != nil {
		t.Fatalf("the in-flight connection on the not-Ready pod: %v", err)
	}
	old := r.kubelet.connsTo("orders-a")[0]
	if old.isDone() {
		t.Fatal("the not-Ready pod's session closed under its in-flight connection")
	}
	inflight.Close()
	eventually(t, "the not-Ready pod's session is released after its last connection", old.isDone)
}

// TestForwardErrorsNameTheFix: what the cluster refuses is one sentence
// naming the resource and the fix.
func TestForwardErrorsNameTheFix(t *testing.T) {
	forbid := func(verb, resource string) func(*rig) {
		return func(r *rig) {
			r.client.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "x", errors.New("RBAC says no"))
			})
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(*rig)
		edit  func(*Options)
		want  string
	}{
		{"secret missing", func(r *rig) {
			r.client.CoreV1().Secrets(rigNamespace).Delete(context.Background(), "mtls", metav1.DeleteOptions{})
		}, nil, "secret shop/mtls not found: create it (kubectl create secret generic mtls -n shop"},
		{"secret named by --secret missing", nil, func(o *Options) { o.Secret = "other" }, "secret shop/other not found"},
		{"secret forbidden", forbid("*", "secrets"), nil,
			`forbidden: your Kubernetes user may not get secrets in namespace "shop" (check with: kubectl auth can-i get secrets -n shop)`},
		{"pods forbidden", forbid("list", "pods"), nil, `forbidden: your Kubernetes user may not list pods in namespace "shop"`},
		{"service forbidden", forbid("get", "services"), nil, `forbidden: your Kubernetes user may not get services in namespace "shop"`},
		{"service missing", nil, func(o *Options) { o.Targets[0].Name = "nope" }, `svc/nope not found in namespace "shop"; check the name, or pass -n NAMESPACE`},
		{"port not exposed", nil, func(o *Options) { o.Targets[0].Ports[0].Remote = "80" }, "service shop/orders does not expose port 80 (it exposes 443/https)"},
		{"dial refused", func(r *rig) { r.kubelet.dialErr = errors.New("the API server said no") }, nil, "the API server said no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.addPod("orders-a", true)
			if tc.setup != nil {
				tc.setup(r)
			}
			err := r.start(tc.edit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %s", err, tc.want)
			}
		})
	}
}

// TestForwardPassesOnTheKubeletsError: a port nothing listens on is
// reported with the kubelet's words, and the client's connection fails.
func TestForwardPassesOnTheKubeletsError(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	r.kubelet.serve("orders-a", 8443, "127.0.0.1:1") // nothing listens on port 1
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	c := r.dial()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a connection the pod never accepted ended with %v; want an error", err)
	}
	eventually(t, "the kubelet's explanation is logged", func() bool {
		return strings.Contains(r.logs.String(), "svc/orders: pod orders-a: error forwarding port 8443 to pod orders-a")
	})
	if st := r.f.Status(); !strings.Contains(st[0].LastError, "error forwarding port 8443") {
		t.Errorf("status last error %q", st[0].LastError)
	}
}

// TestForwardKeepsGoingWithoutTheCluster: with KeepGoing the listener comes
// up even though the pods cannot be listed, and a connection is told why.
func TestForwardKeepsGoingWithoutTheCluster(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	r.client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	if err := r.start(func(o *Options) { o.KeepGoing = true }); err != nil {
		t.Fatal(err)
	}
	c := r.dial()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a connection with no cluster ended with %v; want an error", err)
	}
	if st := r.f.Status(); !strings.Contains(st[0].LastError, "list pods for svc/orders in namespace \"shop\": connection refused") {
		t.Errorf("status last error %q", st[0].LastError)
	}
}

// TestCloseRefusesLateConnections: a connection accepted while Close runs is
// not tracked, so nothing outlives Close.
func TestCloseRefusesLateConnections(t *testing.T) {
	f, _ := localForwarder(t, LocalTLS)
	a, b := net.Pipe()
	defer b.Close()
	if !f.track(a) {
		t.Fatal("a connection before Close was refused")
	}
	f.Close()
	if _, err := b.Write([]byte("x")); err == nil {
		t.Error("Close left a tracked connection open")
	}
	c, d := net.Pipe()
	defer d.Close()
	if f.track(c) {
		t.Error("a connection after Close was tracked")
	}
}
