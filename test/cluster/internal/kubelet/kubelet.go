// Package kubelet is the test kubelet: the one part of the test cluster that
// cannot be real, because there is no container runtime and no image to run.
//
// It runs each pod's containers as host processes bound to a loopback pod IP
// and otherwise behaves towards the API server the way a kubelet does: it
// registers its Node and keeps it alive with a Lease and the Ready condition,
// reports pod status, honours restart policies and probes, finalizes pod
// deletion, and serves the kubelet API paths the API server proxies to
// (port-forward through Kubernetes' own CRI streaming server, and container
// logs).
package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
)

// Version is what the Node reports as its kubelet version; it matches the
// control plane so version-skew checks in the API server stay quiet.
const Version = "v1.37.2"

// Config configures one test kubelet.
type Config struct {
	// Kubeconfig holds the node's client credentials (user
	// system:node:<NodeName>, group system:nodes), so the Node authorizer
	// and NodeRestriction admission treat it like a real kubelet.
	Kubeconfig string
	// NodeName is the name of the Node object to register.
	NodeName string
	// ServingCertFile and ServingKeyFile are the kubelet's HTTPS serving
	// keypair; the API server verifies it with --kubelet-certificate-authority.
	ServingCertFile, ServingKeyFile string
	// ClientCAFile verifies the client certificate the API server presents
	// (--kubelet-client-certificate); the kubelet refuses any other caller.
	ClientCAFile string
	// AllowedClients lists the certificate common names allowed to call the
	// kubelet API. Empty means any certificate from ClientCAFile.
	AllowedClients []string
	// RootDir holds per-pod logs and bookkeeping.
	RootDir string
	// Address is the kubelet API listen address; the port is registered
	// in the Node, so ":0"-style addresses are fine and avoid port races.
	Address string
	// DeclareWebSocketTunnel lists ExtendWebSocketsToKubelet in the Node's
	// status.declaredFeatures, so the API server hands WebSocket
	// port-forward tunnels to the kubelet instead of translating them to
	// SPDY itself.
	DeclareWebSocketTunnel bool
	// PodNetworkLockDir holds the lock files that keep two test kubelets on
	// one machine from handing out the same loopback pod IPs.
	PodNetworkLockDir string
	// Logger receives the kubelet's own log lines; nil means log.Default().
	Logger *log.Logger
}

// Kubelet is a running test kubelet.
type Kubelet struct {
	cfg      Config
	log      *log.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	ipam     *ipam
	port     int
	apiHost  string
	apiPort  string
	streams  *streamServer
	stats    portForwardStats
	nodeUID  types.UID
	nodeCaps v1.ResourceList

	mu       sync.Mutex
	workers  map[types.UID]*podWorker
	finished map[types.UID]bool // pods whose worker has finalized; never restarted
	wg       sync.WaitGroup
}

// portForwardStats counts the port-forward requests the kubelet received by
// transport, so tests can prove which path (tunnelled WebSocket or SPDY) a
// request really took through the API server.
type portForwardStats struct {
	SPDY            atomic.Int64
	WebSocket       atomic.Int64
	WebSocketTunnel atomic.Int64
}

// Run starts the kubelet and blocks until ctx is cancelled, then stops every
// pod process it started and returns.
func Run(ctx context.Context, cfg Config) error {
	if cfg.NodeName == "" || cfg.Kubeconfig == "" || cfg.RootDir == "" {
		return errors.New("kubelet: NodeName, Kubeconfig and RootDir are required")
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.PodNetworkLockDir == "" {
		cfg.PodNetworkLockDir = filepath.Join(os.TempDir(), "devmtls-testcluster-podnet")
	}
	k := &Kubelet{
		cfg:      cfg,
		log:      cfg.Logger,
		workers:  map[types.UID]*podWorker{},
		finished: map[types.UID]bool{},
	}
	if k.log == nil {
		k.log = log.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.RootDir, "pods"), 0o700); err != nil {
		return err
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubelet: load kubeconfig: %w", err)
	}
	restCfg.UserAgent = "testkubelet/" + Version
	restCfg.QPS, restCfg.Burst = 50, 100
	if u, err := url.Parse(restCfg.Host); err == nil {
		k.apiHost, k.apiPort = u.Hostname(), u.Port()
	}
	k.client, err = kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	k.ipam, err = newIPAM(cfg.PodNetworkLockDir)
	if err != nil {
		return err
	}
	defer k.ipam.release()
	k.log.Printf("pod network %s", k.ipam.cidr())

	k.streams, err = newStreamServer(k)
	if err != nil {
		return err
	}
	defer k.streams.close()

	ln, srv, err := k.newAPIServer()
	if err != nil {
		return err
	}
	k.port = ln.Addr().(*net.TCPAddr).Port
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	defer srv.Close()
	k.log.Printf("kubelet API on https://%s", ln.Addr())

	// Not tied to ctx: pods stopped during shutdown still get their
	// Killing events out before the deferred Shutdown.
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	k.recorder = broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: cfg.NodeName})

	if err := k.registerNode(ctx); err != nil {
		return err
	}
	go k.heartbeat(ctx)

	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + cfg.NodeName
		}))
	podInformer := factory.Core().V1().Pods().Informer()
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.podChanged(ctx, obj) },
		UpdateFunc: func(_, obj any) { k.podChanged(ctx, obj) },
		DeleteFunc: func(obj any) { k.podRemoved(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			k.shutdownPods()
			return fmt.Errorf("kubelet API server: %w", err)
		}
	}
	factory.Shutdown()
	k.shutdownPods()
	return nil
}

// shutdownPods stops every pod process and waits for the workers, so a
// stopped kubelet leaves no host processes behind. The pods stay in the API
// server, as they do when a real kubelet stops.
func (k *Kubelet) shutdownPods() {
	k.mu.Lock()
	for _, w := range k.workers {
		w.shutdown()
	}
	k.mu.Unlock()
	k.wg.Wait()
}

// newAPIServer builds the kubelet's HTTPS server. It speaks HTTP/1.1 only,
// because the API server proxies port-forward as an HTTP upgrade, and it
// requires a client certificate from the cluster's client CA.
func (k *Kubelet) newAPIServer() (net.Listener, *http.Server, error) {
	cert, err := tls.LoadX509KeyPair(k.cfg.ServingCertFile, k.cfg.ServingKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("kubelet: serving keypair: %w", err)
	}
	caPEM, err := os.ReadFile(k.cfg.ClientCAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("kubelet: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("kubelet: no certificate in %s", k.cfg.ClientCAFile)
	}
	ln, err := net.Listen("tcp", k.cfg.Address)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{
		Handler: k.routes(),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		},
		// A non-nil empty map keeps net/http from negotiating HTTP/2, which
		// cannot carry the upgrade that port-forward needs.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          k.log,
	}
	return ln, srv, nil
}

// podChanged routes an informer add/update to the pod's worker, creating
// one for a pod the kubelet has not started yet.
func (k *Kubelet) podChanged(ctx context.Context, obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if w, ok := k.workers[pod.UID]; ok {
		w.update(pod)
		return
	}
	if k.finished[pod.UID] {
		return
	}
	if pod.DeletionTimestamp != nil || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		// Nothing of this pod runs here (for example after a kubelet
		// restart); a deleted one only needs its deletion finalized.
		if pod.DeletionTimestamp != nil {
			k.finished[pod.UID] = true
			go k.finalizeDeletion(ctx, pod)
		}
		return
	}
	w := newPodWorker(k, pod)
	k.workers[pod.UID] = w
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		w.run(ctx)
		k.mu.Lock()
		delete(k.workers, pod.UID)
		k.finished[pod.UID] = true
		k.mu.Unlock()
	}()
}

// podRemoved handles a pod vanishing from the API server (finalized or
// force-deleted): its processes must stop now.
func (k *Kubelet) podRemoved(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if w, ok := k.workers[pod.UID]; ok {
		w.removed()
	}
	delete(k.finished, pod.UID)
}

// workerByName finds the worker of a pod by namespace and name, as the
// kubelet API addresses pods.
func (k *Kubelet) workerByName(namespace, name string) *podWorker {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, w := range k.workers {
		p := w.currentPod()
		if p.Namespace == namespace && p.Name == name {
			return w
		}
	}
	return nil
}

// workerByUID finds the worker of a pod by UID, which the streaming server
// uses as the sandbox ID.
func (k *Kubelet) workerByUID(uid string) *podWorker {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.workers[types.UID(uid)]
}

// serviceEnv is what a real kubelet derives from the "kubernetes" Service.
// Cluster IPs are not routed here, so it points at the API server's real
// loopback address instead; everything else about service links is left out
// for the same reason.
func (k *Kubelet) serviceEnv() map[string]string {
	if k.apiHost == "" {
		return nil
	}
	port := k.apiPort
	if port == "" {
		port = "443"
	}
	hostPort := net.JoinHostPort(k.apiHost, port)
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":       k.apiHost,
		"KUBERNETES_SERVICE_PORT":       port,
		"KUBERNETES_SERVICE_PORT_HTTPS": port,
		"KUBERNETES_PORT":               "tcp://" + hostPort,
		"KUBERNETES_PORT_443_TCP":       "tcp://" + hostPort,
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  port,
		"KUBERNETES_PORT_443_TCP_ADDR":  k.apiHost,
	}
}

func (k *Kubelet) secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	return k.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (k *Kubelet) configMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return k.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
}
