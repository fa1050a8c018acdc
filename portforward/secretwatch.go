package portforward

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// SecretNotFoundError says the Secret holding the cluster credentials does
// not exist (or no longer does).
type SecretNotFoundError struct {
	Namespace, Name string
}

func (e *SecretNotFoundError) Error() string {
	return fmt.Sprintf("secret %s/%s not found: create it (kubectl create secret generic %s -n %s --from-file=cert=cert.pem --from-file=key=key.pem) or name another with --secret",
		e.Namespace, e.Name, e.Name, e.Namespace)
}

// secretSource follows one Secret holding cluster credentials. Normally it
// watches it (an informer on that one name), so a replaced keypair is used
// from the next pod connection on, a deleted Secret fails new connections
// with SecretNotFoundError, and a Secret that comes back is used again — all
// without polling the API server. A user whose role may get the Secret but
// not watch it still gets a forward: the Secret is then read once per stream
// connection to a pod, as before watching existed.
type secretSource struct {
	f               *Forwarder
	namespace, name string
	stop            chan struct{}

	mu       sync.Mutex
	informer cache.SharedIndexInformer // nil: not watched
	slot     credentialSlot
}

// start lists and watches the Secret once by hand, so that a role that may
// not watch it is told apart from a Secret that is missing, then runs the
// informer.
func (s *secretSource) start(ctx context.Context) error {
	client := s.f.opts.Client
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", s.name).String()}
	_, err := client.CoreV1().Secrets(s.namespace).List(ctx, opts)
	if err == nil {
		var w interface{ Stop() }
		if w, err = client.CoreV1().Secrets(s.namespace).Watch(ctx, opts); err == nil {
			w.Stop()
		}
	}
	switch {
	case apierrors.IsForbidden(err):
		s.f.opts.Logf("may not watch secret %s/%s (%s); it is read again for each new stream connection to a pod instead",
			s.namespace, s.name, apiMessage(err))
		return nil
	case err != nil:
		return fmt.Errorf("read secret %s/%s: %w", s.namespace, s.name, err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(s.namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.FieldSelector = opts.FieldSelector }))
	inf := factory.Core().V1().Secrets().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.refresh() },
		UpdateFunc: func(_, _ any) { s.refresh() },
		DeleteFunc: func(any) { s.refresh() },
	}); err != nil {
		return err
	}
	s.stop = make(chan struct{})
	go inf.Run(s.stop)
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		close(s.stop)
		return fmt.Errorf("watch secret %s/%s: the API server did not answer within 30s", s.namespace, s.name)
	}
	s.mu.Lock()
	s.informer = inf
	s.mu.Unlock()
	s.refresh()
	return nil
}

func (s *secretSource) close() {
	if s.stop != nil {
		close(s.stop)
	}
}

// refresh takes the Secret from the watch cache (see credentialSlot.swap).
func (s *secretSource) refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.informer == nil {
		return // not synced yet; start calls refresh once it is
	}
	obj, ok, err := s.informer.GetStore().GetByKey(s.namespace + "/" + s.name)
	var secret *corev1.Secret
	if ok && err == nil {
		secret, ok = obj.(*corev1.Secret)
	}
	if !ok || err != nil {
		if creds, _ := s.slot.get(); creds != nil {
			s.f.opts.Logf("secret %s/%s was deleted; new connections fail until it is back", s.namespace, s.name)
		}
		s.slot.set(nil, &SecretNotFoundError{Namespace: s.namespace, Name: s.name})
		return
	}
	changed, had, err := s.slot.swap(secretOrigin(secret), secret.Data, false)
	switch {
	case !changed || !had:
		// Nothing new, or first sight: whoever asks for the credentials
		// reports a problem.
	case err != nil:
		s.f.opts.Logf("secret %s/%s changed, and new connections fail: %v", s.namespace, s.name, err)
	default:
		s.f.opts.Logf("secret %s/%s changed; new connections present its new certificate (SHA-256 %s)", s.namespace, s.name,
			s.slot.fingerprint())
	}
}

// watched reports whether the source follows the Secret by a watch.
func (s *secretSource) watched() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.informer != nil
}

// current returns the credentials to use for a new connection: what the
// watch last saw, or — unwatched — what a fresh read gives.
func (s *secretSource) current(ctx context.Context) (*ClusterCredentials, error) {
	if s.watched() {
		return s.slot.get()
	}
	o := s.f.opts
	secret, err := o.Client.CoreV1().Secrets(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	var creds *ClusterCredentials
	if err != nil {
		err = secretError(err, s.namespace, s.name)
	} else {
		creds, err = CredentialsFromSecret(secret)
	}
	s.slot.set(creds, err)
	return creds, err
}

// fingerprint is the SHA-256 fingerprint of the certificate presented to
// pods now, "" when there is none.
func (s *secretSource) fingerprint() string { return s.slot.fingerprint() }
