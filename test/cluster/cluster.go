// Package cluster runs a real Kubernetes control plane on this machine for
// end-to-end tests: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler built from k8s.io/kubernetes, plus a test kubelet that runs
// pods as host processes on loopback pod IPs and serves port-forward with
// Kubernetes' own streaming library. Everything speaks TLS with generated
// certificates, RBAC and the Node authorizer are on, and every port is
// picked at start, so several clusters can run side by side.
//
//	c, err := cluster.Start(ctx, cluster.Options{Dir: t.TempDir()})
//	defer c.Stop()
//	exec.Command("kubectl", "--kubeconfig", c.Kubeconfig(), "get", "nodes")
//
// The module is separate from devmtls' main module so the replace
// directives building Kubernetes needs never reach it; code outside this
// module drives a cluster through cmd/testcluster instead.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/devmtls/devmtls/test/cluster/internal/kubelet"
)

// DefaultNodeName is the name the test kubelet registers under.
const DefaultNodeName = "devmtls-test-node"

// kubeletClientName is the common name of the API server's client
// certificate towards the kubelet; the kubelet admits only it.
const kubeletClientName = "kube-apiserver-kubelet-client"

// Options configures Start.
type Options struct {
	// Dir holds everything of this cluster: certificates, kubeconfigs,
	// etcd data, component logs (logs/), pod logs (kubelet/pods/) and the
	// state file testcluster down reads. Required; made if missing.
	// Start clears what an earlier cluster left there.
	Dir string
	// DeclareWebSocketTunnel makes the kubelet declare
	// ExtendWebSocketsToKubelet, so the API server passes WebSocket
	// port-forwards through to it instead of translating them to SPDY.
	DeclareWebSocketTunnel bool
	// NodeName defaults to DefaultNodeName.
	NodeName string
	// Detach starts the components in their own sessions so they outlive
	// the calling process (testcluster up); stop them with StopDir.
	// Attached components are killed if the calling process dies.
	Detach bool
	// Binaries, if set, skips EnsureBinaries.
	Binaries *Binaries
	// Build is passed to EnsureBinaries.
	Build BuildOptions
	// ReadyTimeout bounds the wait for /readyz and a Ready node
	// (default 3 minutes; the machine may be busy).
	ReadyTimeout time.Duration
	// Logf receives progress messages (t.Logf fits); nil discards them.
	Logf func(format string, args ...any)
}

// Timings are measured from the start of the first process (etcd), so
// they exclude building binaries.
type Timings struct {
	// Readyz is when the API server first answered /readyz.
	Readyz time.Duration
	// NodeReady is when the node was Ready and schedulable and the default
	// ServiceAccount existed, i.e. when pods can start.
	NodeReady time.Duration
}

// Cluster is a running (or stopped) test cluster.
type Cluster struct {
	dir     string
	logf    func(string, ...any)
	st      state
	timings Timings

	mu      sync.Mutex
	procs   []*process // nil when attached from a state file
	stopped bool
}

// portInUseError marks a start that failed because another program took a
// port between freePorts and the component binding it; Start retries.
type portInUseError struct{ err error }

func (e portInUseError) Error() string { return e.err.Error() }
func (e portInUseError) Unwrap() error { return e.err }

// Start builds (if needed) and starts a cluster in opts.Dir and returns once
// the API server is ready, the node is Ready and schedulable, and the
// default ServiceAccount exists. On failure everything it started is
// stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("cluster: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if opts.NodeName == "" {
		opts.NodeName = DefaultNodeName
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if st, err := readState(dir); err == nil {
		for _, p := range st.Processes {
			if p.alive() {
				return nil, fmt.Errorf("a cluster is already running in %s (%s pid %d); stop it first (testcluster down --dir %s)", dir, p.Name, p.PID, dir)
			}
		}
	}
	bins := opts.Binaries
	if bins == nil {
		if opts.Build.Logf == nil {
			opts.Build.Logf = opts.Logf
		}
		if bins, err = EnsureBinaries(ctx, opts.Build); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, opts, bins)
		var inUse portInUseError
		if err == nil || !errors.As(err, &inUse) || attempt == 3 {
			return c, err
		}
		opts.Logf("port taken while starting (%v); retrying with new ports", err)
	}
}

// paths of one cluster directory.
type layout struct{ dir string }

func (l layout) pki(name string) string { return filepath.Join(l.dir, "pki", name) }
func (l layout) log(name string) string { return filepath.Join(l.dir, "logs", name+".log") }

func start(ctx context.Context, opts Options, bins *Binaries) (_ *Cluster, err error) {
	l := layout{opts.Dir}
	// Only what a previous cluster wrote is removed, so a mistaken --dir
	// cannot wipe unrelated files.
	for _, name := range []string{"pki", "etcd", "logs", "kubelet", "users", "kubeconfig", stateFile, "pids"} {
		if err := os.RemoveAll(filepath.Join(opts.Dir, name)); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"pki", "logs", "etcd", "kubelet", "users"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := writePKI(l, server, opts.NodeName); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}

	c := &Cluster{
		dir:  opts.Dir,
		logf: opts.Logf,
		st: state{
			Version:         1,
			Server:          server,
			Kubeconfig:      filepath.Join(opts.Dir, "kubeconfig"),
			NodeName:        opts.NodeName,
			WebSocketTunnel: opts.DeclareWebSocketTunnel,
		},
	}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				opts.Logf("cleanup after failed start: %v", stopErr)
			}
		}
	}()
	run := func(name, exe string, args ...string) (*process, error) {
		p, err := startProcess(name, exe, args, l.log(name), opts.Detach)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.procs = append(c.procs, p)
		c.st.Processes = append(c.st.Processes, p.procInfo)
		c.mu.Unlock()
		// Recorded at once, so `down` can clean up even if this start dies.
		return p, c.st.write(opts.Dir)
	}

	ctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	t0 := time.Now()

	etcdURL := "https://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcd, err := run("etcd", bins.Etcd,
		"--name=devmtls",
		"--data-dir="+filepath.Join(opts.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=devmtls="+peerURL,
		"--initial-cluster-state=new",
		"--cert-file="+l.pki("etcd-server.crt"),
		"--key-file="+l.pki("etcd-server.key"),
		"--client-cert-auth",
		"--trusted-ca-file="+l.pki("etcd-ca.crt"),
		"--logger=zap",
		"--log-outputs=stderr",
	)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, etcd, net.JoinHostPort("127.0.0.1", strconv.Itoa(etcdPort))); err != nil {
		return nil, err
	}

	apiserver, err := run("kube-apiserver", bins.APIServer,
		"--advertise-address=127.0.0.1",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		// A loopback advertise address is refused by the default
		// lease reconciler; nothing routes to the kubernetes Service here.
		"--endpoint-reconciler-type=none",
		"--etcd-servers="+etcdURL,
		"--etcd-cafile="+l.pki("etcd-ca.crt"),
		"--etcd-certfile="+l.pki("apiserver-etcd-client.crt"),
		"--etcd-keyfile="+l.pki("apiserver-etcd-client.key"),
		"--tls-cert-file="+l.pki("apiserver.crt"),
		"--tls-private-key-file="+l.pki("apiserver.key"),
		"--client-ca-file="+l.pki("ca.crt"),
		"--kubelet-client-certificate="+l.pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+l.pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority="+l.pki("ca.crt"),
		"--kubelet-preferred-address-types=InternalIP",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+l.pki("sa.pub"),
		"--service-account-signing-key-file="+l.pki("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir="+l.pki("generated"),
		// The front-proxy (aggregation) settings kubeadm configures; the
		// controller manager and scheduler read them for authentication
		// delegation and complain without them.
		"--requestheader-client-ca-file="+l.pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+l.pki("front-proxy-client.crt"),
		"--proxy-client-key-file="+l.pki("front-proxy-client.key"),
	)
	if err != nil {
		return nil, err
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", c.st.Kubeconfig)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, "API server /readyz", func(ctx context.Context) (bool, error) {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, nil
	}); err != nil {
		return nil, withPortHint(err, apiserver, etcd)
	}
	c.timings.Readyz = time.Since(t0)
	opts.Logf("API server %s ready after %s", server, c.timings.Readyz.Round(time.Millisecond))

	if _, err := run("kube-controller-manager", bins.ControllerManager,
		"--kubeconfig="+l.pki("controller-manager.kubeconfig"),
		"--authentication-kubeconfig="+l.pki("controller-manager.kubeconfig"),
		"--authorization-kubeconfig="+l.pki("controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		// One instance per cluster: leader election would only delay
		// the start by a lease acquisition.
		"--leader-elect=false",
		"--service-account-private-key-file="+l.pki("sa.key"),
		"--root-ca-file="+l.pki("ca.crt"),
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file="+l.pki("ca.crt"),
		"--cluster-signing-key-file="+l.pki("ca.key"),
		// Pod IPs are loopback addresses, which Endpoints and
		// EndpointSlice validation rejects; these controllers would only
		// retry failed writes forever. kubectl and devmtls find a
		// Service's pods through its selector, which needs neither.
		"--controllers=*,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	if _, err := run("kube-scheduler", bins.Scheduler,
		"--kubeconfig="+l.pki("scheduler.kubeconfig"),
		"--authentication-kubeconfig="+l.pki("scheduler.kubeconfig"),
		"--authorization-kubeconfig="+l.pki("scheduler.kubeconfig"),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	kubeletArgs := []string{
		"--kubeconfig=" + l.pki("kubelet.kubeconfig"),
		"--node-name=" + opts.NodeName,
		"--tls-cert-file=" + l.pki("kubelet.crt"),
		"--tls-private-key-file=" + l.pki("kubelet.key"),
		"--client-ca-file=" + l.pki("ca.crt"),
		"--allowed-clients=" + kubeletClientName,
		"--root-dir=" + filepath.Join(opts.Dir, "kubelet"),
	}
	if opts.DeclareWebSocketTunnel {
		kubeletArgs = append(kubeletArgs, "--declare-websocket-tunnel")
	}
	if _, err := run("testkubelet", bins.Kubelet, kubeletArgs...); err != nil {
		return nil, err
	}

	if err := c.waitFor(ctx, "a Ready, schedulable node and the default ServiceAccount", func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, opts.NodeName, metav1.GetOptions{})
		if err != nil || !nodeReady(node) {
			return false, nil
		}
		_, err = client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	c.timings.NodeReady = time.Since(t0)
	opts.Logf("node %s ready after %s", opts.NodeName, c.timings.NodeReady.Round(time.Millisecond))
	return c, nil
}

// nodeReady: Ready, and no longer carrying the taints the node lifecycle
// controller puts on a node it has not yet seen ready (pods would stay
// Pending until they go).
func nodeReady(n *v1.Node) bool {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
			ready = true
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute {
			return false
		}
	}
	return ready
}

// waitFor polls cond until it holds, a component exits, or ctx ends; the
// error then carries the tail of the component's log.
func (c *Cluster) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	for {
		c.mu.Lock()
		procs := c.procs
		c.mu.Unlock()
		for _, p := range procs {
			if p.exited() {
				return fmt.Errorf("%s exited while waiting for %s (%v); end of %s:\n%s", p.Name, what, p.waitErr, p.Log, logTail(p.Log, 3000))
			}
		}
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s: %w (component logs in %s)", what, ctx.Err(), filepath.Join(c.dir, "logs"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(ctx context.Context, p *process, addr string) error {
	for {
		if p.exited() {
			return withPortHint(fmt.Errorf("%s exited (%v); end of %s:\n%s", p.Name, p.waitErr, p.Log, logTail(p.Log, 3000)), p)
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s on %s: %w", p.Name, addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// withPortHint marks err as a port conflict when a component's log says so.
func withPortHint(err error, procs ...*process) error {
	for _, p := range procs {
		if strings.Contains(logTail(p.Log, 20000), "address already in use") {
			return portInUseError{err}
		}
	}
	return err
}

// Kubeconfig is the path of the admin kubeconfig (client certificate in
// group system:masters).
func (c *Cluster) Kubeconfig() string { return c.st.Kubeconfig }

// Server is the API server URL, https://127.0.0.1:PORT.
func (c *Cluster) Server() string { return c.st.Server }

// Dir is the cluster directory.
func (c *Cluster) Dir() string { return c.dir }

// NodeName is the test kubelet's Node.
func (c *Cluster) NodeName() string { return c.st.NodeName }

// WebSocketTunnel reports whether the node declares ExtendWebSocketsToKubelet.
func (c *Cluster) WebSocketTunnel() bool { return c.st.WebSocketTunnel }

// Timings reports how long the start took (zero for an attached cluster).
func (c *Cluster) Timings() Timings { return c.timings }

// PodLogDir is where the kubelet writes the output of a pod's containers
// (one directory per container, one file per restart).
func (c *Cluster) PodLogDir(namespace, name string, uid string) string {
	return filepath.Join(c.dir, "kubelet", "pods", namespace+"_"+name+"_"+uid)
}

// RESTConfig is the admin client configuration.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.st.Kubeconfig)
}

// userFileName keeps user names usable as file names.
func userFileName(name string) string {
	return regexp.MustCompile(`[^A-Za-z0-9._-]`).ReplaceAllString(name, "_")
}

// UserKubeconfig writes a kubeconfig for a user authenticated by a client
// certificate with common name name and organizations groups, and returns
// its path. No RBAC is granted: such a user is forbidden everything except
// what the groups already allow (use it for "forbidden" tests, or bind
// roles to it).
func (c *Cluster) UserKubeconfig(name string, groups ...string) (string, error) {
	if name == "" {
		return "", errors.New("cluster: user name is empty")
	}
	l := layout{c.dir}
	ca, err := loadAuthority(l.pki("ca.crt"), l.pki("ca.key"))
	if err != nil {
		return "", err
	}
	certPEM, keyPEM, err := ca.issue(leaf{cn: name, orgs: groups, client: true})
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.dir, "users", userFileName(name)+".kubeconfig")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return path, writeKubeconfig(path, c.st.Server, ca.certPEM, certPEM, keyPEM, name)
}

// Stop stops every process of the cluster by PID: the kubelet first (it
// stops its pods), then scheduler, controller manager, API server and etcd.
// It is safe to call more than once. The directory and its logs stay.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	var errs []error
	for i := len(c.st.Processes) - 1; i >= 0; i-- {
		p := c.st.Processes[i]
		grace := 10 * time.Second
		if p.Name == "testkubelet" {
			grace = 20 * time.Second
		}
		if err := p.stop(grace); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	if len(errs) == 0 {
		c.stopped = true
		_ = os.Remove(filepath.Join(c.dir, stateFile))
		_ = os.Remove(filepath.Join(c.dir, "pids"))
	}
	return errors.Join(errs...)
}

// Attach returns the cluster a detached Start (testcluster up) left in dir,
// for Stop, Kubeconfig and UserKubeconfig.
func Attach(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	return &Cluster{dir: dir, st: *st, logf: func(string, ...any) {}}, nil
}

// Running reports whether every process of the cluster is alive.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || len(c.st.Processes) == 0 {
		return false
	}
	for _, p := range c.st.Processes {
		if !p.alive() {
			return false
		}
	}
	return true
}

// StopDir stops the cluster recorded in dir, if any. Without a state file
// there is nothing to stop and it returns nil, so it is idempotent.
func StopDir(dir string) error {
	c, err := Attach(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.Stop()
}

// PortForwardStats counts the port-forward requests the test kubelet
// received by transport; see KubeletPortForwardStats.
type PortForwardStats = kubelet.PortForwardStats

// KubeletPortForwardStats asks the kubelet how many port-forwards reached
// it over SPDY, v4 WebSocket and tunnelled WebSocket, which tells which
// path the API server took. The kubelet is called directly with the API
// server's kubelet client certificate: the API server's node proxy refuses
// loopback node addresses.
func (c *Cluster) KubeletPortForwardStats(ctx context.Context) (PortForwardStats, error) {
	var stats PortForwardStats
	restCfg, err := c.RESTConfig()
	if err != nil {
		return stats, err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return stats, err
	}
	node, err := client.CoreV1().Nodes().Get(ctx, c.st.NodeName, metav1.GetOptions{})
	if err != nil {
		return stats, err
	}
	l := layout{c.dir}
	cert, err := tls.LoadX509KeyPair(l.pki("apiserver-kubelet-client.crt"), l.pki("apiserver-kubelet-client.key"))
	if err != nil {
		return stats, err
	}
	caPEM, err := os.ReadFile(l.pki("ca.crt"))
	if err != nil {
		return stats, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}
	defer tr.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d%s", node.Status.DaemonEndpoints.KubeletEndpoint.Port, kubelet.StatsPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return stats, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return stats, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return stats, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return stats, json.NewDecoder(resp.Body).Decode(&stats)
}
