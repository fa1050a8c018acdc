package portforward

import (
	"context"
	"crypto/tls"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// ListenerStatus describes one listener for `devmtls status`.
type ListenerStatus struct {
	Target  string `json:"target"`
	Address string `json:"address"`
	Remote  string `json:"remote"`
	Pod     string `json:"pod,omitempty"`
	// ClusterFingerprint is the SHA-256 fingerprint of the certificate
	// presented to the pod, from the Secret as last read.
	ClusterFingerprint string `json:"cluster_fingerprint_sha256,omitempty"`
	Active             int64  `json:"active_connections"`
	Total              int64  `json:"total_connections"`
	LastError          string `json:"last_error,omitempty"`
	LastErrorAt        string `json:"last_error_at,omitempty"`
	// Pods are the target's connections per pod (the same for every
	// listener of the target).
	Pods []PodStats `json:"pods,omitempty"`
}

// Forwarder serves every listener of one devmtls forward invocation. Its jobs
// live in one file each: options.go (what it is asked to do), listen.go
// (local sockets and the accept loop), conn.go (one local connection),
// podcache.go (a target's pods), session.go (the stream connection to a pod),
// streams.go (a connection's stream pair and mTLS to the pod) and bridge.go
// with relay.go (copying between the two sides).
type Forwarder struct {
	opts      Options
	targets   []*target
	listeners []*listener

	// localTLS yields the local server configuration for each new
	// connection, so a configuration can change under a running forward.
	localTLS func() *tls.Config

	budget batchBudget // shared by every connection's relays

	secretsMu sync.Mutex
	secrets   map[string]credentialSource // by Secret name, watched while the forwarder runs

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// New checks the options; Start contacts the cluster.
func New(opts Options) (*Forwarder, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	local := opts.LocalTLS
	f := &Forwarder{opts: opts, conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
		localTLS: func() *tls.Config { return local }}
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
		// Connect now, so that what stands in the way is said at start and
		// the first connection finds its pod dialled.
		s, err := t.session(ctx)
		if err != nil {
			if !f.opts.KeepGoing {
				f.Close()
				return err
			}
			t.report(err)
			continue
		}
		s.release()
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
		s.Pods = l.target.podStats()
		l.target.mu.Lock()
		var names []string
		for name, sess := range l.target.sessions {
			names = append(names, name)
			s.ClusterFingerprint = sess.secret.fingerprint()
		}
		sort.Strings(names)
		if p := l.target.pinned; p != "" && !l.target.spread() {
			s.Pod = p
		} else {
			s.Pod = strings.Join(names, ",")
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
	f.secretsMu.Lock()
	for _, s := range f.secrets {
		s.close()
	}
	f.secrets = nil
	f.secretsMu.Unlock()
}
