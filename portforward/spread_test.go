package portforward

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// dataStreams is how many connections the fake kubelet forwarded to pod.
func (r *rig) dataStreams(pod string) int {
	return len(r.kubelet.remoteStreams(pod, "data"))
}

// echoMany makes n connections one after the other, each echoing.
func (r *rig) echoMany(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		c := r.dial()
		if err := echoed(c, 512); err != nil {
			t.Fatalf("connection %d: %v\n%s", i, err, r.logs)
		}
		c.Close()
	}
}

// statsOf returns the per-pod counts of the rig's target, by pod.
func statsOf(f *Forwarder) map[string]PodStats {
	out := map[string]PodStats{}
	for _, p := range f.Stats()[0].Pods {
		out[p.Pod] = p
	}
	return out
}

// TestForwardSpreadsOverReadyPods: a service target sends new connections
// round-robin over its Ready pods, one stream connection per pod, never to a
// pod that is not Ready; a pod that leaves Ready leaves the rotation at once.
func TestForwardSpreadsOverReadyPods(t *testing.T) {
	r := newRig(t)
	for _, p := range []string{"orders-a", "orders-b", "orders-c"} {
		r.addPod(p, true)
	}
	r.addPod("orders-x", false)
	var mu sync.Mutex
	var events []Event
	if err := r.start(func(o *Options) {
		o.Events = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
	}); err != nil {
		t.Fatal(err)
	}
	r.echoMany(t, 30)
	for _, p := range []string{"orders-a", "orders-b", "orders-c"} {
		if n := r.dataStreams(p); n != 10 {
			t.Errorf("%s got %d of 30 connections; want 10", p, n)
		}
		if n := r.kubelet.dialsTo(p); n != 1 {
			t.Errorf("%s: %d stream connections; want 1, shared by its connections", p, n)
		}
	}
	if n := r.dataStreams("orders-x"); n != 0 {
		t.Errorf("the pod that is not Ready got %d connections", n)
	}
	eventually(t, "every connection is counted as closed", func() bool {
		st := statsOf(r.f)
		for _, p := range []string{"orders-a", "orders-b", "orders-c"} {
			if st[p].Total != 10 || st[p].Open != 0 {
				return false
			}
		}
		return len(st) == 3
	})

	r.setReady("orders-c", false)
	eventually(t, "orders-c leaves the rotation", func() bool {
		r.f.targets[0].mu.Lock()
		defer r.f.targets[0].mu.Unlock()
		return r.f.targets[0].ready == "orders-a,orders-b"
	})
	r.echoMany(t, 10)
	if n := r.dataStreams("orders-c"); n != 10 {
		t.Errorf("orders-c, not Ready, got %d new connections", n-10)
	}
	if a, b := r.dataStreams("orders-a"), r.dataStreams("orders-b"); a+b != 30 || a != 15 {
		t.Errorf("after orders-c left: orders-a %d, orders-b %d connections in all; want 15 each", a, b)
	}

	eventually(t, "the last closed event", func() bool { return statsOf(r.f)["orders-b"].Open == 0 && statsOf(r.f)["orders-a"].Open == 0 })
	mu.Lock()
	defer mu.Unlock()
	kinds := map[EventKind]int{}
	var switched Event
	for _, e := range events {
		kinds[e.Kind]++
		if e.Kind == EventPodSwitched {
			switched = e
		}
	}
	if kinds[EventListening] != 1 || kinds[EventOpened] != 40 || kinds[EventClosed] != 40 {
		t.Errorf("events %v; want 1 listening, 40 opened, 40 closed", kinds)
	}
	if switched.Pod != "orders-a,orders-b" || switched.Target != "svc/orders" {
		t.Errorf("pod-switched event %+v; want the Ready pods orders-a,orders-b", switched)
	}
}

// TestForwardPinKeepsOnePod: with Pin, every connection goes to the pod
// Ready longest, as kubectl port-forward's do, until it stops being Ready.
func TestForwardPinKeepsOnePod(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	r.addPod("orders-b", true)
	var mu sync.Mutex
	var switched []Event
	if err := r.start(func(o *Options) {
		o.Pin = true
		o.Events = func(e Event) {
			if e.Kind == EventPodSwitched {
				mu.Lock()
				switched = append(switched, e)
				mu.Unlock()
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	r.echoMany(t, 10)
	if a, b := r.dataStreams("orders-a"), r.dataStreams("orders-b"); a != 10 || b != 0 {
		t.Errorf("pinned: orders-a %d, orders-b %d of 10; want all on orders-a (Ready longest)", a, b)
	}
	if st := r.f.Status(); st[0].Pod != "orders-a" {
		t.Errorf("status pod %q; want orders-a", st[0].Pod)
	}
	r.setReady("orders-a", false)
	eventually(t, "the pinned pod's session is set aside", func() bool {
		r.f.targets[0].mu.Lock()
		defer r.f.targets[0].mu.Unlock()
		return r.f.targets[0].sessions["orders-a"] == nil
	})
	r.echoMany(t, 5)
	if b := r.dataStreams("orders-b"); b != 5 {
		t.Errorf("after orders-a left Ready, orders-b got %d of 5", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(switched) != 1 || switched[0].Pod != "orders-b" || !strings.Contains(switched[0].Message, "instead of orders-a") {
		t.Errorf("pod-switched events %+v; want one, to orders-b", switched)
	}
}

// TestForwardEventsCountBytes: opened and closed events name the pod and
// addresses, and closed counts the plaintext each way.
func TestForwardEventsCountBytes(t *testing.T) {
	r := newRig(t)
	r.addPod("orders-a", true)
	closed := make(chan Event, 1)
	if err := r.start(func(o *Options) {
		o.Events = func(e Event) {
			if e.Kind == EventClosed {
				closed <- e
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	c := r.dial()
	if err := echoed(c, 100000); err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().String()
	c.Close()
	e := <-closed
	if e.BytesSent != 100000 || e.BytesReceived != 100000 {
		t.Errorf("closed event counts %d sent, %d received; want 100000 each", e.BytesSent, e.BytesReceived)
	}
	if e.Pod != "orders-a" || e.Client != local || e.Local != r.addr || e.Remote != "shop/orders-a:8443" {
		t.Errorf("closed event %+v", e)
	}
}

// TestEventLogger: text is one line per event with key=value pairs; json is
// one object per line that decodes back to the event.
func TestEventLogger(t *testing.T) {
	var b strings.Builder
	logText, err := NewEventLogger(&b, "text")
	if err != nil {
		t.Fatal(err)
	}
	e := Event{Kind: EventClosed, Target: "svc/orders", Pod: "orders-a", Local: "127.0.0.1:8443", BytesSent: 3, BytesReceived: 4, Error: "the pod went away"}
	logText(e)
	logText(Event{Kind: EventLog, Message: "plain words"})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], ` closed target=svc/orders pod=orders-a local=127.0.0.1:8443 sent=3 received=4 error="the pod went away"`) ||
		!strings.HasSuffix(lines[1], " plain words") {
		t.Errorf("text log:\n%s", b.String())
	}

	b.Reset()
	logJSON, err := NewEventLogger(&b, "JSON")
	if err != nil {
		t.Fatal(err)
	}
	logJSON(e)
	logJSON(Event{Kind: EventLog, Message: "with \"quotes\"\nand a newline"})
	lines = strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("json log has %d lines; want 2:\n%s", len(lines), b.String())
	}
	var back Event
	if err := json.Unmarshal([]byte(lines[0]), &back); err != nil {
		t.Fatal(err)
	}
	back.Time = e.Time
	if back != e {
		t.Errorf("decoded %+v\nwant %+v", back, e)
	}
	if _, err := NewEventLogger(&b, "yaml"); err == nil || !strings.Contains(err.Error(), "use text or json") {
		t.Errorf("unknown format: %v", err)
	}
}

// workload is a deploy/, sts/ or rs/ named orders whose pod selector is
// sel, in the rig's namespace.
func workload(kind Kind, sel *metav1.LabelSelector) runtime.Object {
	meta := metav1.ObjectMeta{Name: "orders", Namespace: rigNamespace}
	switch kind {
	case KindDeployment:
		return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: sel}}
	case KindStatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel}}
	case KindReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Selector: sel}}
	}
	panic("not a workload kind: " + kind.Short())
}

// TestForwardSpreadsOverWorkloadPods: a deploy/, sts/ or rs/ target spreads
// its connections over the Ready pods its selector (match labels and match
// expressions alike) selects, as a svc/ target does, never to a Ready pod
// the selector leaves out.
func TestForwardSpreadsOverWorkloadPods(t *testing.T) {
	for _, kind := range []Kind{KindDeployment, KindStatefulSet, KindReplicaSet} {
		t.Run(kind.Short(), func(t *testing.T) {
			r := newRig(t)
			sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "track", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"canary"}}}}
			if err := r.client.Tracker().Add(workload(kind, sel)); err != nil {
				t.Fatal(err)
			}
			r.addPod("orders-a", true)
			r.addPod("orders-b", true)
			r.addPod("orders-x", false)
			r.addPod("orders-canary", true)
			canary := ordersPod("orders-canary", true)
			canary.Labels["track"] = "canary"
			if _, err := r.client.CoreV1().Pods(rigNamespace).Update(context.Background(), canary, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := r.start(func(o *Options) {
				o.Targets = []Target{{Kind: kind, Name: "orders", Ports: []PortSpec{{Remote: "https"}}}}
			}); err != nil {
				t.Fatal(err)
			}
			r.echoMany(t, 6)
			for pod, want := range map[string]int{"orders-a": 3, "orders-b": 3, "orders-x": 0, "orders-canary": 0} {
				if n := r.dataStreams(pod); n != want {
					t.Errorf("%s/orders: %s got %d of 6 connections; want %d", kind.Short(), pod, n, want)
				}
			}
		})
	}
}
