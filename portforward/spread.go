package portforward

import (
	"sort"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// A Service spreads new connections over its Ready endpoints; kubectl
// port-forward picks one pod and stays there (kubectl#881, kubefwd#12). A
// service or workload target here does what the Service would: each new
// connection goes to the next Ready pod, round-robin, with one session per
// pod. A pod that stops being Ready leaves the rotation as soon as the pod
// cache hears of it (podsChanged), the way its endpoint leaves the Service.
// Options.Pin, and every pod target, keep kubectl's one pod.

// spread reports whether new connections go round-robin over the Ready pods.
func (t *target) spread() bool {
	return !t.f.opts.Pin && t.spec.Kind != KindPod
}

// readyPods returns the Ready pods, by name, so that the rotation is stable.
func readyPods(pods []corev1.Pod) []*corev1.Pod {
	var ready []*corev1.Pod
	for i := range pods {
		if podReady(&pods[i]) {
			ready = append(ready, &pods[i])
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].Name < ready[j].Name })
	return ready
}

// readyNames lists the Ready pods, comma-separated. t.mu is held.
func (t *target) readyNames() string {
	var names []string
	for _, p := range readyPods(t.cachedPods()) {
		names = append(names, p.Name)
	}
	return strings.Join(names, ",")
}

// choosePod returns the pod the next connection goes to, or nil when none is
// Ready: the next in the rotation when spreading, else the pinned pod while
// it stays Ready, else the pod Ready longest. t.mu is held.
func (t *target) choosePod(pods []corev1.Pod) *corev1.Pod {
	if t.spread() {
		ready := readyPods(pods)
		if len(ready) == 0 {
			return nil
		}
		p := ready[t.next%uint64(len(ready))]
		t.next++
		return p
	}
	if t.pinned != "" {
		for i := range pods {
			if pods[i].Name == t.pinned && podReady(&pods[i]) {
				return &pods[i]
			}
		}
	}
	return pickPod(pods)
}

// podCounter counts one pod's connections.
type podCounter struct {
	open, total atomic.Int64
}

// PodStats are the connections of one pod.
type PodStats struct {
	Pod   string `json:"pod"`
	Open  int64  `json:"open"`
	Total int64  `json:"total"`
}

// TargetStats are one target's connections, per pod.
type TargetStats struct {
	Target string     `json:"target"`
	Pods   []PodStats `json:"pods"`
}

// opened counts a connection to pod; the returned counter's open count is
// the caller's to decrement.
func (t *target) opened(pod string) *podCounter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pods == nil {
		t.pods = map[string]*podCounter{}
	}
	c := t.pods[pod]
	if c == nil {
		c = &podCounter{}
		t.pods[pod] = c
	}
	c.open.Add(1)
	c.total.Add(1)
	return c
}

// prunePods forgets the counts of pods that are gone and have no open
// connection, so a forward running through many rollouts stays small.
// t.mu is held.
func (t *target) prunePods() {
	for name, c := range t.pods {
		if c.open.Load() == 0 && t.cachedPod(name) == nil {
			delete(t.pods, name)
		}
	}
}

// podStats returns the per-pod counts, by pod name.
func (t *target) podStats() []PodStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PodStats, 0, len(t.pods))
	for name, c := range t.pods {
		out = append(out, PodStats{Pod: name, Open: c.open.Load(), Total: c.total.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

// Stats reports, per target, the open and total connections of each pod it
// has sent connections to (pods that are gone drop out once their last
// connection has ended).
func (f *Forwarder) Stats() []TargetStats {
	out := make([]TargetStats, 0, len(f.targets))
	for _, t := range f.targets {
		out = append(out, TargetStats{Target: t.spec.String(), Pods: t.podStats()})
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
