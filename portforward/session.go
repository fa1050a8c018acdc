package portforward

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/streaming/pkg/httpstream"
)

// session is one upgraded stream connection to one pod, shared by the local
// connections that arrive while that pod is Ready.
type session struct {
	target *target
	pod    *corev1.Pod
	conn   httpstream.Connection
	secret credentialSource
	// creds were read when the session started; used only when the Secret
	// is not watched (see secretSource).
	creds      *ClusterCredentials
	serverName string
	ports      map[string]int32

	stale     atomic.Bool
	refs      atomic.Int64
	requestID atomic.Int64
	doneOnce  sync.Once
	done      chan struct{}
}

// session returns a session (its refcount taken) for the pod the next
// connection goes to (see choosePod), creating one — read the Secret, dial
// the stream connection — when that pod has none. Waiting for a Ready pod
// lasts up to PodRunningTimeout.
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
		pods := t.cachedPods()
		pod := t.choosePod(pods)
		if pod != nil {
			if s := t.live(pod); s != nil {
				s.refs.Add(1)
				t.mu.Unlock()
				return s, nil
			}
			pod = pod.DeepCopy()
		}
		changed := t.changed
		t.mu.Unlock()

		if pod != nil {
			s, err := t.newSession(ctx, pod)
			if err != nil {
				return nil, err
			}
			var switched *Event
			t.mu.Lock()
			if cur := t.live(pod); cur != nil {
				// Another connection won the race; use its session.
				s.closeConn()
				s = cur
			} else {
				if t.sessions == nil {
					t.sessions = map[string]*session{}
				}
				t.sessions[pod.Name] = s
				if t.all == nil {
					t.all = map[*session]struct{}{}
				}
				t.all[s] = struct{}{}
				if !t.spread() {
					if t.pinned != "" && t.pinned != pod.Name {
						switched = &Event{Kind: EventPodSwitched, Target: t.spec.String(), Pod: pod.Name,
							Message: "new connections go to pod " + pod.Name + " instead of " + t.pinned}
					}
					t.pinned = pod.Name
				}
			}
			s.refs.Add(1)
			t.mu.Unlock()
			if switched != nil {
				t.f.emit(*switched)
			}
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

// live returns the usable session to pod (this very pod, not an earlier one
// of the same name), or nil. t.mu is held.
func (t *target) live(pod *corev1.Pod) *session {
	s := t.sessions[pod.Name]
	if s == nil || s.stale.Load() || s.pod.UID != pod.UID {
		return nil
	}
	return s
}

// newSession reads what a connection to pod needs — its container ports, the
// Secret with the cluster credentials — and dials its stream connection.
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
	src, err := t.f.credentialSource(ctx, t.resolver.secretFor(svc))
	if err != nil {
		return nil, err
	}
	creds, err := src.current(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := o.Dialer.DialPod(o.Namespace, pod.Name)
	if err != nil {
		return nil, err
	}
	s := &session{target: t, pod: pod.DeepCopy(), conn: conn, secret: src, creds: creds, serverName: t.resolver.serverNameFor(svc),
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

// clusterCredentials are what a new connection presents to the pod: the
// watched Secret's current keypair, or the one read when the session started.
func (s *session) clusterCredentials(ctx context.Context) (*ClusterCredentials, error) {
	if s.secret.watched() {
		return s.secret.current(ctx)
	}
	return s.creds, nil
}

// forget drops a closed session.
func (t *target) forget(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.all, s)
	if t.sessions[s.pod.Name] == s {
		delete(t.sessions, s.pod.Name)
	}
}

// invalidate marks the session unusable for new connections; the stream
// connection closes once the connections using it are done.
func (s *session) invalidate() {
	s.stale.Store(true)
	if s.refs.Load() == 0 {
		s.closeConn()
	}
}

// release gives back a reference; the last one closes a stale session.
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
