package hybrid

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/envdir"
	"github.com/devmtls/devmtls/internal/kubeconfig"
	"github.com/devmtls/devmtls/portforward"
	"k8s.io/client-go/kubernetes"
)

// served is one forward as the background process runs it.
type served struct {
	spec      Forward
	namespace string
	fwd       *portforward.Forwarder // nil when its kubeconfig could not be loaded
	err       string                 // why fwd is nil
	ports     []Port
	// containers: the first len(ports) listeners are for containers.
	containers bool
}

// Run is the background process: it serves envDir's spec until ctx ends,
// reporting in state.json. It holds the environment's forwards lock for its
// whole life, so at most one runs per environment.
func Run(ctx context.Context, envDir string, log io.Writer) error {
	d, err := envdir.Open(envDir)
	if err != nil {
		return err
	}
	defer d.Close()
	lock, err := d.TryLock(rel(lockFile))
	if errors.Is(err, envdir.ErrLocked) {
		return fmt.Errorf("another devmtls already serves the forwards of %s", d.Path("."))
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	start, err := processStart(os.Getpid())
	if err != nil {
		// devmtls down will say it cannot prove this process is its own.
		start = ""
	}
	var logMu sync.Mutex
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(log, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}

	spec, err := readSpec(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	live, err := liveCredentials(ctx, d.Path("."), logf)
	if err != nil {
		return err
	}

	all, err := serveAll(ctx, spec, live.ServerConfig(), logf)
	if err != nil {
		return err
	}
	defer closeAll(all)
	st := &State{PID: os.Getpid(), Start: start, EnvDir: d.Path("."), SpecHash: spec.Hash(), StartedAt: time.Now().UTC()}
	var last []ForwardState
	for {
		cur := snapshot(all, live)
		if !reflect.DeepEqual(cur, last) {
			st.Forwards, st.UpdatedAt = cur, time.Now().UTC()
			if err := writeState(d, st); err != nil {
				logf("write state: %v", err)
			}
			last = cur
		}
		select {
		case <-ctx.Done():
			logf("stopping: %v", context.Cause(ctx))
			d.Remove(rel(stateFile))
			return nil
		case <-time.After(time.Second):
		}
	}
}

// liveCredentials serves the environment's dev credentials as a live source:
// every listener takes them per connection, so a rotation or renewal by any
// devmtls reaches running forwards without a restart; the process renews
// them itself when due and keeps the compose copies following them.
func liveCredentials(ctx context.Context, envDir string, logf func(string, ...any)) (*certs.Live, error) {
	store := &certs.Store{Dir: envDir}
	creds, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	live, err := compose.LiveCredentials(store, creds, logf)
	if err != nil {
		return nil, err
	}
	go live.Run(ctx)
	return live, nil
}

func serveAll(ctx context.Context, spec Spec, local *tls.Config, logf func(string, ...any)) ([]*served, error) {
	var all []*served
	for _, f := range spec.Forwards {
		s, err := serve(ctx, spec, f, local, logf)
		if err != nil {
			closeAll(all)
			return nil, err
		}
		all = append(all, s)
	}
	return all, nil
}

func closeAll(all []*served) {
	for _, s := range all {
		if s.fwd != nil {
			s.fwd.Close()
		}
	}
}

// Local serves a spec's forwards inside this process, on loopback only: what
// `devmtls exec` does when no background process runs.
type Local struct {
	all    []*served
	live   *certs.Live
	cancel context.CancelFunc
}

// ServeLocal starts the forwards of spec for host processes; Close ends them.
func ServeLocal(ctx context.Context, envDir string, spec Spec, logf func(string, ...any)) (*Local, error) {
	spec.ContainerAddress = ""
	ctx, cancel := context.WithCancel(ctx)
	live, err := liveCredentials(ctx, envDir, logf)
	if err != nil {
		cancel()
		return nil, err
	}
	all, err := serveAll(ctx, spec, live.ServerConfig(), logf)
	if err != nil {
		cancel()
		return nil, err
	}
	return &Local{all: all, live: live, cancel: cancel}, nil
}

// Forwards reports the forwards as served.
func (l *Local) Forwards() []ForwardState { return snapshot(l.all, l.live) }

// Close stops the forwards.
func (l *Local) Close() {
	l.cancel()
	closeAll(l.all)
}

// serve starts one forward: listeners on the container address at the ports
// containers use, and on loopback for host processes (the same port when free,
// so IDE configurations stay valid; else any). A listener that cannot bind is
// fatal — the user must pick another port — while an unreachable cluster is
// not: the forward keeps retrying and reports why.
func serve(ctx context.Context, spec Spec, f Forward, local *tls.Config, logf func(string, ...any)) (*served, error) {
	s := &served{spec: f, namespace: f.Namespace, ports: f.Ports, containers: spec.ContainerAddress != ""}
	target, err := portforward.ParseTarget(f.Target)
	if err != nil {
		return nil, fmt.Errorf("forward %s: %w", f.As, err)
	}
	if s.containers {
		for _, p := range f.Ports {
			target.Ports = append(target.Ports, portforward.PortSpec{Local: p.Listen, Remote: p.Remote, Address: spec.ContainerAddress})
		}
	}
	for _, p := range f.Ports {
		target.Ports = append(target.Ports, portforward.PortSpec{Local: hostPort(p.Listen), Remote: p.Remote, Address: "127.0.0.1"})
	}
	cfg, ns, err := kubeconfig.Load(kubeconfig.Options{Kubeconfig: spec.Kubeconfig, Context: f.Context, Namespace: f.Namespace})
	if err != nil {
		s.err = err.Error()
		logf("%s: %v", f.As, err)
		return s, nil
	}
	s.namespace = ns
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("forward %s: %w", f.As, err)
	}
	fwd, err := portforward.New(portforward.Options{
		Config: cfg, Client: client, Namespace: ns, Targets: []portforward.Target{target},
		Secret: f.Secret, ServerName: f.ServerName, Local: portforward.LocalTLS, LocalTLS: local,
		Protocol: portforward.Protocol(f.Protocol), KeepGoing: true,
		Logf: func(format string, args ...any) { logf(f.As+" ("+format+")", args...) },
	})
	if err != nil {
		return nil, fmt.Errorf("forward %s: %w", f.As, err)
	}
	if err := fwd.Start(ctx); err != nil {
		if errors.As(err, new(*portforward.PortInUseError)) {
			return nil, fmt.Errorf("forward %s: a port it needs is already in use on %s or 127.0.0.1 (%v); stop what uses it, or give the forward another port, e.g. ports: [\"%d:%s\"]",
				f.As, spec.ContainerAddress, err, f.Ports[0].Listen+8000, f.Ports[0].Remote)
		}
		return nil, fmt.Errorf("forward %s: %w", f.As, err)
	}
	go fwd.Serve(ctx)
	logf("%s: forwarding %s -> %s in namespace %s", f.As, strings.Join(fwd.Addrs(), ", "), f.Target, ns)
	s.fwd = fwd
	return s, nil
}

// hostPort is the loopback port for a forward: the container's port when it
// is free, else 0 (any).
func hostPort(listen int) int {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(listen)))
	if err != nil {
		return 0
	}
	ln.Close()
	return listen
}

func snapshot(all []*served, live *certs.Live) []ForwardState {
	var out []ForwardState
	for _, s := range all {
		fs := ForwardState{As: s.spec.As, Target: s.spec.Target, Namespace: s.namespace, LastError: s.err,
			DevFingerprint: live.Fingerprint()}
		if s.fwd != nil {
			for i, l := range s.fwd.Status() {
				if s.containers && i < len(s.ports) {
					fs.Containers = append(fs.Containers, l.Address)
				} else {
					fs.Host = append(fs.Host, l.Address)
				}
				fs.Pod, fs.ClusterFingerprint = l.Pod, l.ClusterFingerprint
				fs.Active, fs.Total = l.Active, l.Total
				fs.LastError, fs.LastErrorAt = l.LastError, l.LastErrorAt
			}
		}
		out = append(out, fs)
	}
	return out
}

func readSpec(d *envdir.Dir) (Spec, error) {
	data, err := d.ReadFile(rel(specFile))
	if err != nil {
		return Spec{}, fmt.Errorf("read the forwards spec: %w", err)
	}
	return parseSpec(d.Path(rel(specFile)), data)
}

func writeState(d *envdir.Dir, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return d.WriteFile(rel(stateFile), append(data, '\n'), 0o600, -1, -1)
}
