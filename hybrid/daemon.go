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
	"strings"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/internal/envdir"
	"github.com/devmtls/devmtls/internal/kubeconn"
	"github.com/devmtls/devmtls/portforward"
	"k8s.io/client-go/kubernetes"
)

// served is one forward as the background process runs it.
type served struct {
	spec      forwards.Forward
	namespace string
	fwd       *portforward.Forwarder // nil when its kubeconfig could not be loaded
	err       string                 // why fwd is nil
	// relayed: relay containers carry it to the containers.
	relayed bool
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
	// One line per event, as text or JSON (DEVMTLS_LOG_FORMAT): the
	// forwards' own events and every other diagnostic alike, so a JSON log
	// parses line by line.
	events, err := portforward.NewEventLogger(log, os.Getenv(LogFormatEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", LogFormatEnv, err)
	}
	logf := func(format string, args ...any) {
		events(portforward.Event{Kind: portforward.EventLog, Message: fmt.Sprintf(format, args...)})
	}
	routeKlog(events)

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

	all, err := serveAll(ctx, spec, live.ServerConfig(), logf, events)
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

func serveAll(ctx context.Context, spec Spec, local *tls.Config, logf func(string, ...any), events func(portforward.Event)) ([]*served, error) {
	var all []*served
	for _, f := range spec.Forwards {
		s, err := serve(ctx, spec, f, local, logf, events)
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
	spec.Gateway, spec.Relayed = "", false
	ctx, cancel := context.WithCancel(ctx)
	live, err := liveCredentials(ctx, envDir, logf)
	if err != nil {
		cancel()
		return nil, err
	}
	all, err := serveAll(ctx, spec, live.ServerConfig(), logf, nil)
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

// serve starts one forward: for each declared port, a listener on its host
// port on loopback for host processes, and on the gateway address for the
// relays. A listener that cannot bind is fatal, while an unreachable cluster
// is not: the forward keeps retrying and reports why. events, when not nil,
// receives the forward's events, named after it.
func serve(ctx context.Context, spec Spec, f forwards.Forward, local *tls.Config, logf func(string, ...any), events func(portforward.Event)) (*served, error) {
	s := &served{spec: f, namespace: f.Namespace, relayed: spec.Relayed}
	t := portforward.Target{Kind: f.Target.Kind, Name: f.Target.Name}
	addrs := []string{"127.0.0.1"}
	if spec.Gateway != "" {
		addrs = append(addrs, spec.Gateway)
	}
	for _, a := range addrs {
		for _, p := range f.Target.Ports {
			t.Ports = append(t.Ports, portforward.PortSpec{Local: spec.HostPorts.Port(f.As, p.Local), Remote: p.Remote, Address: a})
		}
	}
	cfg, ns, err := kubeconn.LoadPaths(spec.Kubeconfig, f.Context, f.Namespace)
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
	opts := portforward.Options{
		Config: cfg, Client: client, Namespace: ns, Targets: []portforward.Target{t},
		Secret: f.Secret, ClusterCredsDir: f.Creds, ServerName: f.ServerName, Local: portforward.LocalTLS, LocalTLS: local,
		Protocol: f.Protocol, KeepGoing: true,
		Logf: func(format string, args ...any) { logf(f.As+" ("+format+")", args...) },
	}
	if events != nil {
		opts.Events = func(e portforward.Event) {
			e.Name = f.As
			events(e)
		}
	}
	fwd, err := portforward.New(opts)
	if err != nil {
		return nil, fmt.Errorf("forward %s: %w", f.As, err)
	}
	if err := fwd.Start(ctx); err != nil {
		if inUse := (*portforward.PortInUseError)(nil); errors.As(err, &inUse) {
			return nil, &HostPortInUseError{Forward: f.As, Port: inUse.Port, Addrs: addrs, Err: err}
		}
		return nil, fmt.Errorf("forward %s: %w", f.As, err)
	}
	go fwd.Serve(ctx)
	logf("%s: forwarding %s -> %s in namespace %s", f.As, strings.Join(fwd.Addrs(), ", "), f.Target, ns)
	s.fwd = fwd
	return s, nil
}

// HostPortInUseError says the host port recorded for a forward is taken by
// another program. devmtls does not silently pick another: NAME_ADDR would
// change under the IDE configurations and scripts that hold it.
type HostPortInUseError struct {
	Forward string
	Port    int
	Addrs   []string
	Err     error
}

func (e *HostPortInUseError) Error() string {
	return fmt.Sprintf("forward %s: its host port %d (on %s) is in use by another program; devmtls chose it for this environment and keeps it, so %s stays the same from run to run: stop that program (ss -ltnp 'sport = :%d' names it), or remove %s and devmtls chooses new ports (then run devmtls ide again)",
		e.Forward, e.Port, strings.Join(e.Addrs, " and "), forwards.AddrVar(e.Forward, 0), e.Port, rel(placementFile))
}

// Unwrap returns the listen error.
func (e *HostPortInUseError) Unwrap() error { return e.Err }

func snapshot(all []*served, live *certs.Live) []ForwardState {
	var out []ForwardState
	for _, s := range all {
		fs := ForwardState{As: s.spec.As, Target: s.spec.Target.String(), Namespace: s.namespace, LastError: s.err,
			DevFingerprint: live.Fingerprint()}
		if s.relayed {
			fs.Containers = s.spec.Addrs()
		}
		if s.fwd != nil {
			for _, l := range s.fwd.Status() {
				if host, _, _ := net.SplitHostPort(l.Address); host == "127.0.0.1" {
					fs.Host = append(fs.Host, l.Address)
				} else {
					fs.Gateway = append(fs.Gateway, l.Address)
				}
				fs.Pod, fs.ClusterFingerprint = l.Pod, l.ClusterFingerprint
				fs.Active, fs.Total, fs.Pods = l.Active, l.Total, l.Pods
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
