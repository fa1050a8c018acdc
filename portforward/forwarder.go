package portforward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/streaming/pkg/httpstream"
)

// LocalMode is what the local side of a forward speaks.
type LocalMode string

// Local modes.
const (
	// LocalTLS terminates mTLS with the dev keypair: clients present a dev
	// certificate and verify devmtls against the dev anchor.
	LocalTLS LocalMode = "tls"
	// LocalPlain accepts plain TCP; only allowed on loopback.
	LocalPlain LocalMode = "plain"
)

// Protocol is what runs over the forwarded connection.
type Protocol string

// Protocols.
const (
	// ProtocolTCP is TLS directly on the connection.
	ProtocolTCP Protocol = "tcp"
	// ProtocolPostgres negotiates TLS with PostgreSQL's SSLRequest on both sides.
	ProtocolPostgres Protocol = "postgres"
)

// DefaultPodRunningTimeout is kubectl's --pod-running-timeout default.
const DefaultPodRunningTimeout = time.Minute

// handshakeTimeout bounds a local client's TLS (or SSLRequest) handshake, so a
// stuck client cannot hold a goroutine forever.
const handshakeTimeout = 15 * time.Second

// Options configure a Forwarder.
type Options struct {
	Config    *rest.Config
	Client    kubernetes.Interface
	Namespace string
	Targets   []Target
	// Addresses to listen on; "localhost" means 127.0.0.1 and ::1, as in kubectl.
	Addresses  []string
	Secret     string // --secret; "" applies the Service annotation, then "mtls"
	ServerName string // --server-name; "" verifies the chain or the pin only
	Local      LocalMode
	// LocalTLS is the server configuration for LocalTLS: the dev keypair, with
	// client certificates required and verified against the dev anchor.
	LocalTLS          *tls.Config
	Protocol          Protocol
	Transport         Transport
	PodRunningTimeout time.Duration
	// KeepGoing starts the listeners even when a target cannot be resolved yet
	// (the error is reported and retried on each connection); used by the
	// background forwards of `devmtls up`.
	KeepGoing bool
	// Out receives one "Forwarding from …" line per listener.
	Out io.Writer
	// Logf receives diagnostics (one line per distinct cause).
	Logf func(format string, args ...any)
}

// Validate checks options that do not need the cluster.
func (o *Options) Validate() error {
	if len(o.Targets) == 0 {
		return errors.New("nothing to forward")
	}
	if o.Local == LocalTLS && o.LocalTLS == nil {
		return errors.New("local TLS needs the dev keypair")
	}
	if o.Local == LocalPlain {
		addrs := expandAddresses(o.Addresses)
		for _, t := range o.Targets {
			for _, p := range t.Ports {
				if p.Address != "" {
					addrs = append(addrs, p.Address)
				}
			}
		}
		for _, a := range addrs {
			if !IsLoopback(a) {
				return fmt.Errorf("refusing to listen on %s with --local plain: anything but loopback needs local mTLS (drop --local plain, or listen on 127.0.0.1)", a)
			}
		}
	}
	if o.Local == LocalTLS && o.LocalTLS != nil && o.LocalTLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return errors.New("local TLS must require client certificates")
	}
	return nil
}

// IsLoopback reports whether a listen address stays on this machine.
func IsLoopback(addr string) bool {
	if addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// ListenerStatus describes one listener for `devmtls status`.
type ListenerStatus struct {
	Target      string `json:"target"`
	Address     string `json:"address"`
	Remote      string `json:"remote"`
	Pod         string `json:"pod,omitempty"`
	Active      int64  `json:"active_connections"`
	Total       int64  `json:"total_connections"`
	LastError   string `json:"last_error,omitempty"`
	LastErrorAt string `json:"last_error_at,omitempty"`
}

// Forwarder serves every listener of one devmtls forward invocation.
type Forwarder struct {
	opts      Options
	targets   []*target
	listeners []*listener

	budget batchBudget // shared by every connection's relays

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// listener is one local socket for one port of one target.
type listener struct {
	ln     net.Listener
	target *target
	port   PortSpec
	addr   string
}

// New checks the options; Start contacts the cluster.
func New(opts Options) (*Forwarder, error) {
	if opts.PodRunningTimeout == 0 {
		opts.PodRunningTimeout = DefaultPodRunningTimeout
	}
	if opts.Protocol == "" {
		opts.Protocol = ProtocolTCP
	}
	if opts.Local == "" {
		opts.Local = LocalTLS
	}
	if opts.Transport == "" {
		opts.Transport = TransportAuto
	}
	if len(opts.Addresses) == 0 {
		opts.Addresses = []string{"localhost"}
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	f := &Forwarder{opts: opts, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	for _, t := range opts.Targets {
		f.targets = append(f.targets, &target{f: f, spec: t, changed: make(chan struct{})})
	}
	return f, nil
}

// Start resolves every target (failing fast with a one-sentence error, unless
// KeepGoing), opens the listeners and prints one line per listener. Serving
// starts with Serve.
func (f *Forwarder) Start(ctx context.Context) error {
	for _, t := range f.targets {
		if err := t.start(ctx); err != nil {
			if !f.opts.KeepGoing {
				f.Close()
				return err
			}
			t.report(err)
			go t.keepStarting(ctx)
			continue
		}
		if _, err := t.session(ctx); err != nil {
			if !f.opts.KeepGoing {
				f.Close()
				return err
			}
			t.report(err)
		}
	}
	for _, t := range f.targets {
		for _, p := range t.spec.Ports {
			if err := f.listen(t, p); err != nil {
				f.Close()
				return err
			}
		}
	}
	return nil
}

// listen binds every address for one port; a random local port is chosen once
// and reused for the other addresses, as kubectl does.
func (f *Forwarder) listen(t *target, p PortSpec) error {
	port := p.Local
	bound := 0
	var firstErr error
	addrs := f.opts.Addresses
	if p.Address != "" {
		addrs = []string{p.Address}
	}
	for _, a := range expandAddresses(addrs) {
		ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if port == 0 {
			port = ln.Addr().(*net.TCPAddr).Port
		}
		bound++
		l := &listener{ln: ln, target: t, port: p, addr: ln.Addr().String()}
		f.listeners = append(f.listeners, l)
		fmt.Fprintf(f.opts.Out, "Forwarding from %s -> %s %s (%s)\n", l.addr, t.spec, p.Remote, f.describeSecurity(t))
	}
	if bound == 0 {
		if strings.Contains(fmt.Sprint(firstErr), "address already in use") {
			return fmt.Errorf("local port %d is already in use: pick another with LOCAL:%s, or :%s for a free one", p.Local, p.Remote, p.Remote)
		}
		return fmt.Errorf("listen for %s %s: %w", t.spec, p, firstErr)
	}
	return nil
}

func (f *Forwarder) describeSecurity(t *target) string {
	local := "local mTLS"
	if f.opts.Local == LocalPlain {
		local = "local plain TCP"
	}
	proto := ""
	if f.opts.Protocol == ProtocolPostgres {
		proto = ", PostgreSQL SSLRequest"
	}
	return local + ", mTLS to the pod" + proto
}

// expandAddresses turns "localhost" into both loopback addresses.
func expandAddresses(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		for _, part := range strings.Split(a, ",") {
			part = strings.TrimSpace(part)
			if part == "localhost" {
				out = append(out, "127.0.0.1", "::1")
			} else if part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// Serve accepts connections until ctx ends, then closes everything: listeners,
// local connections and streams.
func (f *Forwarder) Serve(ctx context.Context) error {
	for _, l := range f.listeners {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.acceptLoop(ctx, l)
		}()
	}
	<-ctx.Done()
	f.Close()
	f.wg.Wait()
	return nil
}

// Addrs returns the listening addresses, in the order they were printed.
func (f *Forwarder) Addrs() []string {
	var out []string
	for _, l := range f.listeners {
		out = append(out, l.addr)
	}
	return out
}

// Status reports every listener with its pod and counters.
func (f *Forwarder) Status() []ListenerStatus {
	var out []ListenerStatus
	for _, l := range f.listeners {
		s := ListenerStatus{Target: l.target.spec.String(), Address: l.addr, Remote: l.port.Remote,
			Active: l.target.active.Load(), Total: l.target.total.Load()}
		l.target.mu.Lock()
		if l.target.sess != nil {
			s.Pod = l.target.sess.pod.Name
		}
		s.LastError = l.target.lastErr
		if !l.target.lastErrAt.IsZero() {
			s.LastErrorAt = l.target.lastErrAt.Format(time.RFC3339)
		}
		l.target.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// Close stops listeners, local connections and stream connections.
func (f *Forwarder) Close() {
	f.closeOnce.Do(func() { close(f.done) })
	for _, l := range f.listeners {
		l.ln.Close()
	}
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	for _, t := range f.targets {
		t.stop()
	}
}

func (f *Forwarder) acceptLoop(ctx context.Context, l *listener) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			f.opts.Logf("%s: accept on %s: %v", l.target.spec, l.addr, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !f.track(conn) {
			conn.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(conn)
			f.handle(ctx, l, conn)
		}()
	}
}

func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

// handle serves one local connection end to end.
func (f *Forwarder) handle(ctx context.Context, l *listener, raw net.Conn) {
	t := l.target
	t.active.Add(1)
	t.total.Add(1)
	defer t.active.Add(-1)

	// For plain TCP the pod side is opened while the local client completes
	// its handshake: the two round trips overlap, and they are most of a new
	// connection's latency. A local client that then fails its handshake
	// leaves the pod a connection that ends without data, as a client of
	// kubectl port-forward would. PostgreSQL keeps the order, since its
	// opening decides whether a pod connection is wanted (CancelRequest).
	type dialed struct {
		pc  *podConn
		err error
	}
	var early chan dialed
	if f.opts.Protocol == ProtocolTCP {
		early = make(chan dialed, 1)
		go func() {
			pc, err := f.dialPod(ctx, t, l.port)
			early <- dialed{pc, err}
		}()
	}
	local, pending, err := f.acceptLocal(raw)
	if err != nil {
		if early != nil {
			go func() {
				if d := <-early; d.pc != nil {
					d.pc.close()
				} else {
					t.report(d.err)
				}
			}()
		}
		// A client that fails its own handshake is the client's problem; say so
		// once per cause without touching the target's health.
		t.reportLocal(fmt.Errorf("local client %s: %v", raw.RemoteAddr(), err))
		return
	}
	defer local.Close()
	if pending.cancel != nil {
		f.forwardCancel(ctx, t, l.port, pending.cancel)
		return
	}
	var d dialed
	if early != nil {
		d = <-early
	} else {
		d.pc, d.err = f.dialPod(ctx, t, l.port)
	}
	if d.err != nil {
		t.report(d.err)
		refuse(local, f.opts.Protocol, d.err)
		return
	}
	if err := f.bridge(local, d.pc, pending); err != nil {
		t.report(err)
	} else {
		t.recovered()
	}
}

// target is one TYPE/NAME with its pod cache and current session.
type target struct {
	f        *Forwarder
	spec     Target
	resolver *resolver
	selector labels.Selector
	informer cache.SharedIndexInformer
	stopInf  chan struct{}

	active, total atomic.Int64

	mu        sync.Mutex
	sess      *session              // the session new connections use
	all       map[*session]struct{} // every session with an open connection
	changed   chan struct{}         // closed when the pod cache changes
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
			t.f.opts.Logf("%s: connected to the cluster", t.spec)
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
	t.sess = nil
}

// podsChanged reacts to the pod cache: a session whose pod is no longer Ready
// (terminating, failing its probe) takes no new connections but lets its
// in-flight ones finish, as the pod may still be serving them during its grace
// period; a session whose pod is gone is closed at once, ending its
// connections cleanly instead of leaving them writing into a dead stream.
// Connections waiting for a Ready pod are woken.
func (t *target) podsChanged() {
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
	if t.sess != nil && t.sess.stale.Load() {
		t.sess = nil
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *target) cachedPod(name string) *corev1.Pod {
	if t.informer == nil {
		return nil
	}
	obj, ok, err := t.informer.GetStore().GetByKey(t.f.opts.Namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	return obj.(*corev1.Pod)
}

func (t *target) cachedPods() []corev1.Pod {
	var out []corev1.Pod
	for _, obj := range t.informer.GetStore().List() {
		out = append(out, *obj.(*corev1.Pod))
	}
	return out
}

// session returns the live session (its refcount taken), creating one — pick a
// Ready pod, read the Secret, dial the stream connection — when there is none.
func (t *target) session(ctx context.Context) (*session, error) {
	if !t.started() {
		// The pod cache is not up (KeepGoing: the cluster was unreachable);
		// keepStarting retries in the background, so fail fast with the cause.
		t.mu.Lock()
		last := t.lastErr
		t.mu.Unlock()
		if last == "" {
			last = "not connected to the cluster yet"
		}
		return nil, errors.New(last)
	}
	deadline := time.Now().Add(t.f.opts.PodRunningTimeout)
	for {
		t.mu.Lock()
		if s := t.sess; s != nil && !s.stale.Load() {
			s.refs.Add(1)
			t.mu.Unlock()
			return s, nil
		}
		changed := t.changed
		pods := t.cachedPods()
		t.mu.Unlock()

		pod := pickPod(pods)
		if pod != nil {
			s, err := t.newSession(ctx, pod)
			if err != nil {
				return nil, err
			}
			t.mu.Lock()
			if t.sess != nil && !t.sess.stale.Load() {
				// Another connection won the race; use its session.
				s.closeConn()
				s = t.sess
			} else {
				t.sess = s
				if t.all == nil {
					t.all = map[*session]struct{}{}
				}
				t.all[s] = struct{}{}
			}
			s.refs.Add(1)
			t.mu.Unlock()
			return s, nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, t.noReadyPod(pods)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-changed:
			timer.Stop()
		case <-timer.C:
		}
	}
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

func (t *target) newSession(ctx context.Context, pod *corev1.Pod) (*session, error) {
	o := t.f.opts
	var svc *corev1.Service
	if t.spec.Kind == KindService {
		var err error
		if _, svc, err = t.resolver.selectorOf(ctx, t.spec); err != nil {
			return nil, err
		}
	}
	ports := map[string]int32{}
	for _, p := range t.spec.Ports {
		cp, err := containerPort(t.spec, p, svc, pod)
		if err != nil {
			return nil, err
		}
		ports[p.Remote] = cp
	}
	secretName := t.resolver.secretFor(svc)
	secret, err := o.Client.CoreV1().Secrets(o.Namespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("secret %s/%s not found: create it (kubectl create secret generic %s -n %s --from-file=cert=cert.pem --from-file=key=key.pem) or name another with --secret",
				o.Namespace, secretName, secretName, o.Namespace)
		case apierrors.IsForbidden(err):
			return nil, forbidden(err, "get", "secrets", o.Namespace)
		}
		return nil, fmt.Errorf("read secret %s/%s: %w", o.Namespace, secretName, err)
	}
	creds, err := CredentialsFromSecret(secret)
	if err != nil {
		return nil, err
	}
	conn, err := dialPod(o.Config, o.Client, o.Namespace, pod.Name, o.Transport)
	if err != nil {
		return nil, err
	}
	s := &session{target: t, pod: pod.DeepCopy(), conn: conn, creds: creds, serverName: t.resolver.serverNameFor(svc),
		ports: ports, done: make(chan struct{})}
	go func() {
		select {
		case <-conn.CloseChan():
			s.closeConn()
		case <-s.done:
		}
	}()
	return s, nil
}

// forget drops a closed session.
func (t *target) forget(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.all, s)
	if t.sess == s {
		t.sess = nil
	}
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
		t.f.opts.Logf("%s: %s", t.spec, msg)
	}
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
		t.f.opts.Logf("%s: %s", t.spec, msg)
	}
}

func (t *target) recovered() {
	t.mu.Lock()
	was := t.lastCause
	t.lastCause = ""
	t.mu.Unlock()
	if was != "" {
		t.f.opts.Logf("%s: forwarding again", t.spec)
	}
}

// session is one upgraded stream connection to one pod, shared by the local
// connections that arrive while that pod is Ready.
type session struct {
	target     *target
	pod        *corev1.Pod
	conn       httpstream.Connection
	creds      *ClusterCredentials
	serverName string
	ports      map[string]int32

	stale     atomic.Bool
	refs      atomic.Int64
	requestID atomic.Int64
	doneOnce  sync.Once
	done      chan struct{}
}

// invalidate marks the session unusable for new connections; the stream
// connection closes once the connections using it are done.
func (s *session) invalidate() {
	s.stale.Store(true)
	if s.refs.Load() == 0 {
		s.closeConn()
	}
}

func (s *session) release() {
	if s.refs.Add(-1) == 0 && s.stale.Load() {
		s.closeConn()
	}
}

// closeConn closes the stream connection, which ends every stream on it. It
// may be called with the target's lock held.
func (s *session) closeConn() {
	s.doneOnce.Do(func() {
		s.stale.Store(true)
		close(s.done)
		s.conn.Close()
		go s.target.forget(s)
	})
}

// open creates the error and data stream pair for one local connection. The
// kubelet pairs them by request ID in whatever order they arrive, and each
// creation waits for the kubelet's reply, so both are created at once: one
// round trip through the API server instead of two.
func (s *session) open(p PortSpec) (httpstream.Stream, httpstream.Stream, error) {
	port := s.ports[p.Remote]
	id := strconv.FormatInt(s.requestID.Add(1), 10)
	header := func(kind string) http.Header {
		h := http.Header{}
		h.Set(corev1.StreamType, kind)
		h.Set(corev1.PortHeader, strconv.Itoa(int(port)))
		h.Set(corev1.PortForwardRequestIDHeader, id)
		return h
	}
	type created struct {
		stream httpstream.Stream
		err    error
	}
	errc := make(chan created, 1)
	go func() {
		st, err := s.conn.CreateStream(header(corev1.StreamTypeError))
		errc <- created{st, err}
	}()
	data, dataErr := s.conn.CreateStream(header(corev1.StreamTypeData))
	e := <-errc
	if e.err != nil || dataErr != nil {
		for _, st := range []httpstream.Stream{e.stream, data} {
			if st != nil {
				st.Reset()
				s.conn.RemoveStreams(st)
			}
		}
		if e.err != nil {
			return nil, nil, fmt.Errorf("open the error stream to pod %s: %w", s.pod.Name, e.err)
		}
		return nil, nil, fmt.Errorf("open the data stream to pod %s: %w", s.pod.Name, dataErr)
	}
	// Nothing is ever written to the error stream.
	e.stream.Close()
	return data, e.stream, nil
}
