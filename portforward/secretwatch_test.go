package portforward

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/devmtls/devmtls/certs"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
)

// watchSecrets counts the watches opened on Secrets. The fake clientset only
// tells watches that exist of a change (it cannot replay from a resource
// version as the API server does), so a test changes the Secret only once the
// informer's watch is there.
func (r *rig) watchSecrets() *atomic.Int32 {
	var n atomic.Int32
	r.client.PrependWatchReactor("secrets", func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := r.client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		n.Add(1)
		return true, w, err
	})
	return &n
}

// tryEcho dials the forward and echoes; any failure is returned, not fatal.
func (r *rig) tryEcho() error {
	c, err := tls.Dial("tcp", r.addr, r.dev.ClientConfig(r.dev.Top, "localhost"))
	if err != nil {
		return err
	}
	defer c.Close()
	return echoed(c, 1024)
}

func (r *rig) clusterFingerprint() string {
	return r.f.Status()[0].ClusterFingerprint
}

// TestForwardFollowsTheSecret replaces the Secret's keypair and restarts the
// pod's server with it, without the pod object changing: the next connection
// presents the new keypair over the same stream connection. A deleted Secret
// fails new connections with the missing-Secret sentence, and its return
// heals the forward.
func TestForwardFollowsTheSecret(t *testing.T) {
	r := newRig(t)
	watches := r.watchSecrets()
	r.addPod("orders-a", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	if err := r.tryEcho(); err != nil {
		t.Fatal(err)
	}
	// One watch probes the permission, the informer opens the other.
	eventually(t, "the Secret is watched", func() bool { return watches.Load() >= 2 })
	if got, want := r.clusterFingerprint(), certs.Fingerprint(r.cluster.Top.Certificate); got != want {
		t.Fatalf("status shows cluster certificate %s, want %s", got, want)
	}
	src := r.f.targets[0].sessions["orders-a"].secret.(*secretSource)
	before, _ := src.current(context.Background())

	next := clusterKeypair(t, certs.ModeShared)
	s := secret(map[string][]byte{"cert": next.Top.CertPEM, "key": next.Top.KeyPEM})
	if _, err := r.client.CoreV1().Secrets(rigNamespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.cluster = next
	r.servePod("orders-a", echo) // the pod's process restarted with the new keypair
	eventually(t, "a connection with the new keypair succeeds", func() bool { return r.tryEcho() == nil })
	if got, want := r.clusterFingerprint(), certs.Fingerprint(next.Top.Certificate); got != want {
		t.Errorf("status shows cluster certificate %s, want %s", got, want)
	}
	if n := r.kubelet.dialsTo("orders-a"); n != 1 {
		t.Errorf("%d stream connections to orders-a; the new keypair needs no new one", n)
	}
	after, _ := src.current(context.Background())
	if after == before || after.sessions == before.sessions {
		t.Error("the credentials (and their TLS session cache) were not replaced")
	}
	if !strings.Contains(r.logs.String(), "secret shop/mtls changed; new connections present its new certificate") {
		t.Errorf("log:\n%s", r.logs)
	}

	// An update that leaves the keypair alone keeps the credentials and
	// their TLS sessions.
	s.Labels = map[string]string{"touched": "yes"}
	if _, err := r.client.CoreV1().Secrets(rigNamespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the watch sees the label", func() bool {
		obj, ok, _ := src.informer.GetStore().GetByKey("shop/mtls")
		return ok && obj.(metav1.Object).GetLabels()["touched"] == "yes"
	})
	src.refresh()
	if same, _ := src.current(context.Background()); same != after {
		t.Error("an update of the Secret's labels replaced its credentials")
	}

	if err := r.client.CoreV1().Secrets(rigNamespace).Delete(context.Background(), "mtls", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a connection fails once the Secret is deleted", func() bool { return r.tryEcho() != nil })
	_, err := src.current(context.Background())
	var nf *SecretNotFoundError
	if !errors.As(err, &nf) || nf.Name != "mtls" {
		t.Fatalf("with the Secret deleted: %v", err)
	}
	eventually(t, "status names the missing Secret", func() bool {
		return strings.Contains(r.f.Status()[0].LastError, "secret shop/mtls not found: create it (kubectl create secret generic mtls -n shop")
	})

	s.ResourceVersion = ""
	if _, err := r.client.CoreV1().Secrets(rigNamespace).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "connections succeed once the Secret is back", func() bool { return r.tryEcho() == nil })
}

// TestForwardReadsTheSecretWhenItMayNotWatch: a role that may get the Secret
// but not list or watch it still gets a working forward, told once why
// changes are picked up later.
func TestForwardReadsTheSecretWhenItMayNotWatch(t *testing.T) {
	r := newRig(t)
	for _, verb := range []string{"list", "watch"} {
		r.client.PrependReactor(verb, "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("RBAC says no"))
		})
	}
	r.addPod("orders-a", true)
	if err := r.start(nil); err != nil {
		t.Fatal(err)
	}
	if err := r.tryEcho(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(r.logs.String(), "may not watch secret shop/mtls"); n != 1 {
		t.Errorf("want the fallback said once, got %d:\n%s", n, r.logs)
	}
	if r.clusterFingerprint() != certs.Fingerprint(r.cluster.Top.Certificate) {
		t.Error("status lacks the cluster certificate")
	}
}
