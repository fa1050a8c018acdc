package portforward

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// rig is a Forwarder for svc/orders in namespace shop, with client-go's fake
// clientset as the API server's objects and fakeKubelet as the way to pods,
// whose ports are real TLS servers on loopback with the cluster keypair.
type rig struct {
	t       *testing.T
	client  *fake.Clientset
	kubelet *fakeKubelet
	cluster *certs.Credentials // in Secret shop/mtls; the pods' keypair
	dev     *certs.Credentials // the local side's
	pods    map[string]*podServer
	logs    *syncLog
	f       *Forwarder
	addr    string // the IPv4 listener
	// watching is closed once the pod cache watches: the fake clientset only
	// tells watches that exist of a change.
	watching chan struct{}
}

const rigNamespace = "shop"

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, kubelet: newFakeKubelet(), cluster: clusterKeypair(t, certs.ModeShared),
		dev: clusterKeypair(t, certs.ModeShared), pods: map[string]*podServer{}, logs: &syncLog{}, watching: make(chan struct{})}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: rigNamespace},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "orders"},
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromString("https")}}}}
	r.client = fake.NewClientset(svc, secret(map[string][]byte{"cert": r.cluster.Top.CertPEM, "key": r.cluster.Top.KeyPEM}))
	var once sync.Once
	r.client.PrependWatchReactor("pods", func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := r.client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		once.Do(func() { close(r.watching) })
		return true, w, err
	})
	return r
}

// addPod creates a pod of svc/orders whose port https (8443) is served by a
// TLS echo server.
func (r *rig) addPod(name string, ready bool) *podServer {
	r.t.Helper()
	p := ordersPod(name, ready)
	if _, err := r.client.CoreV1().Pods(rigNamespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	srv := startPodServer(r.t, r.cluster, echo)
	r.pods[name] = srv
	r.kubelet.serve(name, 8443, srv.addr)
	return srv
}

// servePod makes handle serve pod's port https instead of an echo.
func (r *rig) servePod(pod string, handle func(net.Conn, *tls.Conn)) {
	r.t.Helper()
	r.pods[pod] = startPodServer(r.t, r.cluster, handle)
	r.kubelet.serve(pod, 8443, r.pods[pod].addr)
}

func (r *rig) setReady(name string, ready bool) {
	r.t.Helper()
	if _, err := r.client.CoreV1().Pods(rigNamespace).Update(context.Background(), ordersPod(name, ready), metav1.UpdateOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

// ordersPod is a pod of svc/orders, Ready or not since now.
func ordersPod(name string, ready bool) *corev1.Pod {
	p := testPod(name, ready, time.Now())
	p.Labels = map[string]string{"app": "orders"}
	p.UID = types.UID("uid-" + name)
	return &p
}

func (r *rig) deletePod(name string) {
	r.t.Helper()
	if err := r.client.CoreV1().Pods(rigNamespace).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

// start runs the Forwarder for svc/orders :443 on 127.0.0.1, with the
// options edit changes, until the test ends.
func (r *rig) start(edit func(*Options)) error {
	r.t.Helper()
	o := Options{Client: r.client, Namespace: rigNamespace, Dialer: r.kubelet,
		Targets:   []Target{{Kind: KindService, Name: "orders", Ports: []PortSpec{{Remote: "443"}}}},
		Addresses: []string{"127.0.0.1"}, Local: LocalTLS, LocalTLS: r.dev.ServerConfig(r.dev.Top),
		Logf: r.logs.logf}
	if edit != nil {
		edit(&o)
	}
	f, err := New(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := f.Start(ctx); err != nil {
		cancel()
		return err
	}
	served := make(chan struct{})
	go func() {
		f.Serve(ctx)
		close(served)
	}()
	r.t.Cleanup(func() {
		cancel()
		<-served
	})
	r.f, r.addr = f, f.Addrs()[0]
	if !f.targets[0].started() {
		return nil // KeepGoing without the cluster
	}
	select {
	case <-r.watching:
	case <-time.After(30 * time.Second):
		r.t.Fatal("the pod cache never started watching")
	}
	return nil
}

// dial connects to the forward as a local client with the dev credentials.
func (r *rig) dial() *tls.Conn {
	r.t.Helper()
	c, err := tls.Dial("tcp", r.addr, r.dev.ClientConfig(r.dev.Top, "localhost"))
	if err != nil {
		r.t.Fatalf("dial the forward: %v\n%s", err, r.logs)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// echoed sends n random bytes and checks they come back.
func echoed(c net.Conn, n int) error {
	sent := make([]byte, n)
	rand.Read(sent)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(sent)
		werr <- err
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read the echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if string(got) != string(sent) {
		return fmt.Errorf("the echo of %d bytes differs from what was sent", n)
	}
	return nil
}

// eventually polls cond, bounded in count and time, and fails the test with
// what when it never holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// podServer is a pod's port: a real TCP listener on loopback that speaks TLS
// with the cluster keypair (requiring the cluster's client certificate, as
// mTLS-only pods do) and runs a handler per connection.
type podServer struct {
	addr string

	mu    sync.Mutex
	conns []net.Conn
}

func startPodServer(t *testing.T, cluster *certs.Credentials, handle func(net.Conn, *tls.Conn)) *podServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &podServer{addr: ln.Addr().String()}
	t.Cleanup(func() {
		ln.Close()
		s.kill()
	})
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, raw)
			s.mu.Unlock()
			go func() {
				defer raw.Close()
				handle(raw, tls.Server(raw, cluster.ServerConfig(cluster.Top)))
			}()
		}
	}()
	return s
}

// kill ends every connection the pod has with a TCP reset, as a process that
// dies with unread data does.
func (s *podServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	s.conns = nil
}

// echo sends back what it reads and finishes cleanly: close_notify, then FIN.
func echo(_ net.Conn, c *tls.Conn) {
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 64<<10))
	c.CloseWrite()
}

// syncLog collects Logf lines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
