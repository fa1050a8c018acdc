package portforward

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// target is one TYPE/NAME with its pod cache and current session.
type target struct {
	f        *Forwarder
	spec     Target
	resolver *resolver
	selector labels.Selector // nil for a pod target
	informer cache.SharedIndexInformer
	stopInf  chan struct{}

	active, total atomic.Int64

	mu sync.Mutex
	// sessions are the sessions new connections use, by pod name: one per
	// pod, shared by its connections.
	sessions map[string]*session
	all      map[*session]struct{} // every session with an open connection
	changed  chan struct{}         // closed when the pod cache changes
	// pinned is the pod a pinned target's connections go to (see spread).
	pinned string
	// next counts the connections handed out round-robin.
	next uint64
	// ready is the Ready pods of a spreading target as last announced.
	ready string
	// pods count connections per pod, for Stats.
	pods      map[string]*podCounter
	lastCause string
	lastLocal string
	lastErr   string
	lastErrAt time.Time
	closed    bool
}

// start resolves the selector and starts a pod cache, so a pod's deletion is
// noticed at once and a replacement is used as soon as it is Ready.
func (t *target) start(ctx context.Context) error {
	o := t.f.opts
	t.resolver = &resolver{client: o.Client, namespace: o.Namespace, secret: o.Secret, serverName: o.ServerName}
	sel, _, err := t.resolver.selectorOf(ctx, t.spec)
	if err != nil {
		return err
	}
	t.selector = sel
	listOpts := metav1.ListOptions{}
	if sel == nil {
		listOpts.FieldSelector = fields.OneTermEqualSelector("metadata.name", t.spec.Name).String()
	} else {
		listOpts.LabelSelector = sel.String()
	}
	// One explicit list first: RBAC and connectivity errors surface here as a
	// sentence instead of an informer retrying silently forever.
	if _, err := o.Client.CoreV1().Pods(o.Namespace).List(ctx, listOpts); err != nil {
		if apierrors.IsForbidden(err) {
			return forbidden(err, "list", "pods", o.Namespace)
		}
		return fmt.Errorf("list pods for %s in namespace %q: %w", t.spec, o.Namespace, err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(o.Client, 0, informers.WithNamespace(o.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector, lo.FieldSelector = listOpts.LabelSelector, listOpts.FieldSelector
		}))
	inf := factory.Core().V1().Pods().Informer()
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { t.podsChanged() },
		UpdateFunc: func(_, obj any) { t.podsChanged() },
		DeleteFunc: func(any) { t.podsChanged() },
	})
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	go inf.Run(stop)
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		close(stop)
		return fmt.Errorf("watch pods for %s in namespace %q: the API server did not answer within 30s", t.spec, o.Namespace)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		close(stop)
		return errors.New("forwarder closed")
	}
	t.informer, t.stopInf = inf, stop
	t.ready = t.readyNames()
	close(t.changed)
	t.changed = make(chan struct{})
	return nil
}

// started reports whether the target's pod cache runs.
func (t *target) started() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.informer != nil
}

// keepStarting retries start with exponential backoff (1s doubling to 30s)
// until it succeeds or the forwarder closes: the cluster may be unreachable
// when devmtls up starts, and the forward must come up once it is back.
func (t *target) keepStarting(ctx context.Context) {
	delay := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.f.done:
			return
		case <-time.After(delay):
		}
		err := t.start(ctx)
		if err == nil {
			t.diag(EventLog, "connected to the cluster")
			t.recovered()
			return
		}
		t.report(err)
		if delay *= 2; delay > 30*time.Second {
			delay = 30 * time.Second
		}
	}
}

func (t *target) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.stopInf != nil {
		close(t.stopInf)
		t.stopInf = nil
	}
	for s := range t.all {
		s.closeConn()
	}
	t.sessions = nil
}

// podsChanged reacts to the pod cache: a session whose pod is no longer Ready
// (terminating, failing its probe) takes no new connections but lets its
// in-flight ones finish, as the pod may still be serving them during its grace
// period; a session whose pod is gone is closed at once, ending its
// connections as broken (see pipe) instead of leaving them writing into a
// dead stream. Connections waiting for a Ready pod are woken.
func (t *target) podsChanged() {
	var events []Event
	defer func() {
		for _, e := range events {
			t.f.emit(e)
		}
	}()
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.all {
		p := t.cachedPod(s.pod.Name)
		switch {
		case p == nil || p.UID != s.pod.UID:
			s.closeConn()
		case !podReady(p):
			s.invalidate()
		}
	}
	for name, s := range t.sessions {
		if s.stale.Load() {
			delete(t.sessions, name)
		}
	}
	if t.spread() && t.informer != nil {
		ready := t.readyNames()
		if ready != t.ready {
			events = append(events, Event{Kind: EventPodSwitched, Target: t.spec.String(), Pod: ready,
				Message: "new connections go round-robin to the Ready pods " + orNone(ready)})
		}
		t.ready = ready
	}
	t.prunePods()
	close(t.changed)
	t.changed = make(chan struct{})
}

// matches reports whether a pod belongs to the target. The pod cache is
// already filtered by the API server; checking again keeps every pod source
// honest, such as client-go's fake clientset, whose watches ignore selectors.
func (t *target) matches(p *corev1.Pod) bool {
	if t.selector == nil {
		return p.Name == t.spec.Name
	}
	return t.selector.Matches(labels.Set(p.Labels))
}

func (t *target) cachedPod(name string) *corev1.Pod {
	if t.informer == nil {
		return nil
	}
	obj, ok, err := t.informer.GetStore().GetByKey(t.f.opts.Namespace + "/" + name)
	if err != nil || !ok || !t.matches(obj.(*corev1.Pod)) {
		return nil
	}
	return obj.(*corev1.Pod)
}

func (t *target) cachedPods() []corev1.Pod {
	var out []corev1.Pod
	for _, obj := range t.informer.GetStore().List() {
		if p := obj.(*corev1.Pod); t.matches(p) {
			out = append(out, *p)
		}
	}
	return out
}

func (t *target) noReadyPod(pods []corev1.Pod) error {
	what := t.spec.String()
	if t.spec.Kind == KindPod {
		if len(pods) == 0 {
			return fmt.Errorf("pod %s/%s not found; check the name, or pass -n NAMESPACE", t.f.opts.Namespace, t.spec.Name)
		}
		return fmt.Errorf("pod %s/%s is not Running and Ready (%s) after waiting %s; see kubectl describe pod %s -n %s",
			t.f.opts.Namespace, t.spec.Name, describePods(pods), t.f.opts.PodRunningTimeout, t.spec.Name, t.f.opts.Namespace)
	}
	return fmt.Errorf("no Ready pod for %s in namespace %q after waiting %s (%s); see kubectl get pods -n %s -l %s",
		what, t.f.opts.Namespace, t.f.opts.PodRunningTimeout, describePods(pods), t.f.opts.Namespace, t.selector)
}

// report logs an error once per distinct cause (not once per connection) and
// keeps it for status.
func (t *target) report(err error) {
	msg := err.Error()
	t.mu.Lock()
	first := msg != t.lastCause
	t.lastCause, t.lastErr, t.lastErrAt = msg, msg, time.Now()
	t.mu.Unlock()
	if first {
		t.diag(EventError, msg)
	}
}

// diag says something about the target once: as an event when the caller
// takes events, else through Logf.
func (t *target) diag(kind EventKind, msg string) {
	if t.f.opts.Events == nil {
		t.f.opts.Logf("%s: %s", t.spec, msg)
		return
	}
	e := Event{Kind: kind, Target: t.spec.String()}
	if kind == EventError {
		e.Error = msg
	} else {
		e.Message = msg
	}
	t.f.emit(e)
}

func (t *target) reportLocal(err error) {
	msg := err.Error()
	// Strip the client's address so repeated failures of one kind log once.
	key := msg[strings.Index(msg, ":")+1:]
	t.mu.Lock()
	first := key != t.lastLocal
	t.lastLocal = key
	t.mu.Unlock()
	if first {
		t.diag(EventError, msg)
	}
}

func (t *target) recovered() {
	t.mu.Lock()
	was := t.lastCause
	t.lastCause = ""
	t.mu.Unlock()
	if was != "" {
		t.diag(EventLog, "forwarding again")
	}
}
