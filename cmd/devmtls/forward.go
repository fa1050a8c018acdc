package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/kubeconn"
	"github.com/devmtls/devmtls/portforward"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// forwardOptions backs `devmtls forward`.
type forwardOptions struct {
	g                 *globalOptions
	kube              *kubeconn.Flags
	verbosity         int
	file              string
	logFormat         string
	addresses         []string
	secret            string
	serverName        string
	local             string
	protocol          string
	transport         string
	podRunningTimeout time.Duration
	tuning            forwardTuning

	targets []portforward.Target
	opts    portforward.Options
	// live serves the dev credentials on the local side (--local tls).
	live *certs.Live
	// entries are what -f declares, one forward each.
	entries []fileEntry
	// fileVars are the NAME_ADDR lines for -f.
	fileVars []addrVar
}

func newForwardCmd(g *globalOptions) *cobra.Command {
	o := &forwardOptions{g: g, kube: kubeconn.NewFlags()}
	cmd := &cobra.Command{
		Use:   "forward (TYPE/NAME [LOCAL:]REMOTE... [TYPE/NAME [LOCAL:]REMOTE...]... | -f FILE)",
		Short: "Forward local ports to pods, speaking mTLS to them",
		Long: `Forward local ports to pods, services, deployments, statefulsets or replicasets,
like kubectl port-forward, but:

  * toward the pod it speaks mTLS with the cluster's credentials, read from a
    Secret (--secret, else the Service's devmtls.dev/secret annotation, else
    "mtls"; keys cert/tls.crt, key/tls.key and ca/ca.crt/cacert — without a CA
    the certificate is pinned) and kept in memory only;
  * toward you it offers mTLS with the environment's dev keypair (--local tls,
    the default when the environment has credentials) or plain TCP on loopback
    (--local plain); it follows the keypair as it changes (a rotation, a
    renewal, which it also makes itself when it runs long enough) without a
    restart, keeping connections that are open;
  * its listeners outlive pods: after a pod restart the next connection goes to
    a Ready replacement; it watches the Secret, so a replaced keypair is used
    from the next connection on;
  * new connections to a service, deployment, statefulset or replicaset go
    round-robin over its Ready pods, as the Service would (--pin keeps
    kubectl's one pod); without Secret access, --cluster-creds DIR reads the
    cluster keypair from files; idle tunnels are kept alive with pings
    (--keepalive);
  * one process serves several targets.

Without --server-name, the pod's certificate is verified against the Secret's
CA (or, without a CA, against the certificate itself: a self-signed
certificate that is its own trust anchor) but not against a host name, since
such certificates often carry none; set --server-name (or the Service
annotation devmtls.dev/server-name) to check one.

The cluster connection takes kubectl's own flags (--kubeconfig, --context,
-n, --as, --as-group, --token, --server, --request-timeout,
--insecure-skip-tls-verify, --certificate-authority, --tls-server-name …,
from kubectl's library), and KUBECONFIG is merged as kubectl merges it.

With -f FILE, every forward FILE declares is served by this one process,
without Docker. FILE is a forwards file, whose only key, forwards:, holds the
list x-devmtls.forwards holds in a compose file (target, ports, and per entry
namespace, context, secret or creds, server_name, protocol, as), or a compose
file, whose x-devmtls.forwards is used. -n and --context are the defaults of
entries that set none. A table of what listens where goes to stderr, and
NAME_ADDR=HOST:PORT lines to stdout once everything listens. The ports are
stable: in a compose project (or any environment with dev credentials) they
are the environment's own, the same that devmtls env and devmtls ide give.

Completion of contexts, namespaces, TYPE/NAME and ports comes from the
cluster, each call bounded to 2 seconds; set it up with
  source <(devmtls completion bash)      # or zsh, fish, powershell`,
		Example: `  devmtls forward svc/orders 8443:443
  devmtls forward svc/orders :https deploy/payments 9443:8443 -n shop
  devmtls forward --protocol postgres svc/db 5432
  devmtls forward --local plain svc/orders 8080:443   # then: curl http://127.0.0.1:8080
  devmtls forward --context staging --as jane -n shop svc/orders 8443:443

  # Without read access to Secrets: the cluster keypair from files
  # (cert/key/ca or tls.crt/tls.key/ca.crt)
  devmtls forward --cluster-creds ~/creds/shop svc/orders 8443:443

  # Everything a forwards file (or a compose file) declares, in one process;
  # the NAME_ADDR lines on stdout are ready for a shell or a dotenv file:
  devmtls forward -f forwards.yaml > forwards.env &
  set -a; . ./forwards.env; set +a      # once it has started: $ORDERS_ADDR …
  devmtls forward -f compose.yaml       # the project's x-devmtls.forwards, without Docker

  # forwards.yaml
  forwards:
    - {target: svc/orders, namespace: shop, ports: ["443"]}
    - {target: deploy/billing, namespace: billing, context: staging,
       creds: ./billing-creds, ports: ["8443:https"]}`,
		Args:              o.args,
		ValidArgsFunction: o.completeArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(c, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c.Context())
		},
	}
	o.addKubeFlags(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&o.addresses, "address", []string{"localhost"}, "addresses to listen on (comma-separated); anything but loopback requires --local tls")
	fl.StringVar(&o.secret, "secret", "", "Secret holding the cluster's mTLS keypair (default: the Service's devmtls.dev/secret annotation, else mtls)")
	fl.StringVar(&o.serverName, "server-name", "", "name the pod's certificate must carry (also sent as SNI)")
	fl.StringVar(&o.local, "local", "", "what local clients speak: tls (mTLS with the dev keypair) or plain (loopback only); default tls when the environment has credentials, else plain")
	fl.StringVar(&o.protocol, "protocol", "tcp", "tcp, or postgres to negotiate TLS with PostgreSQL's SSLRequest on both sides")
	fl.StringVar(&o.transport, "transport", "auto", "how streams reach the API server: auto (WebSocket, falling back to SPDY, as kubectl), websocket or spdy")
	fl.DurationVar(&o.podRunningTimeout, "pod-running-timeout", portforward.DefaultPodRunningTimeout, "how long to wait for a Running and Ready pod")
	o.tuning.add(fl) // --pin, --cluster-creds, --keepalive: forwardtuning.go
	o.addFileFlags(cmd)
	return cmd
}

func (o *forwardOptions) Complete(cmd *cobra.Command, args []string) error {
	ctx := cmd.Context()
	if err := o.completeLogging(); err != nil {
		return err
	}
	var targets []portforward.Target
	if o.file == "" {
		var err error
		if targets, err = portforward.ParseArgs(args); err != nil {
			return usageErrorf("%v", err)
		}
	}
	o.targets = targets
	local := portforward.LocalMode(o.local)
	switch local {
	case portforward.LocalTLS, portforward.LocalPlain:
	case "":
		local = portforward.LocalPlain
	default:
		return usageErrorf("--local: use tls or plain, got %q", o.local)
	}
	proto := portforward.Protocol(o.protocol)
	if proto != portforward.ProtocolTCP && proto != portforward.ProtocolPostgres {
		return usageErrorf("--protocol: use tcp or postgres, got %q", o.protocol)
	}
	transport, err := portforward.ParseTransport(o.transport)
	if err != nil {
		return usageErrorf("--transport: %v", err)
	}
	o.opts = portforward.Options{
		Targets: targets, Addresses: o.addresses, Secret: o.secret, ServerName: o.serverName,
		Local: local, Protocol: proto, Transport: transport, PodRunningTimeout: o.podRunningTimeout,
		Out: o.g.stdout, Logf: func(format string, args ...any) {
			fmt.Fprintf(o.g.stderr, "devmtls forward: "+format+"\n", args...)
		},
	}
	if err := o.tuning.apply(cmd.Flags(), &o.opts); err != nil {
		return err
	}
	if o.opts.Events, err = o.events(); err != nil {
		return err
	}
	if o.logFormat == portforward.LogFormatJSON {
		// Every line on stderr is then an event that parses on its own.
		events := o.opts.Events
		o.opts.Logf = func(format string, args ...any) {
			events(portforward.Event{Kind: portforward.EventLog, Message: fmt.Sprintf(format, args...)})
		}
	}
	if o.file != "" {
		return o.completeFile(cmd)
	}
	dir, err := o.g.envDir()
	if err != nil {
		return err
	}
	if err := o.completeLocal(ctx, dir, certs.Request{}); err != nil {
		return err
	}
	cfg, client, ns, err := o.connect("", "")
	if err != nil {
		return err
	}
	o.opts.Config, o.opts.Client, o.opts.Namespace = cfg, client, ns
	return nil
}

// completeLocal sets up what local clients speak: mTLS with the dev keypair
// of the environment in dir (req is what to ensure for --local tls), or plain
// TCP. Without --local it follows the environment: mTLS when it has
// credentials.
func (o *forwardOptions) completeLocal(ctx context.Context, dir string, req certs.Request) error {
	if o.local != "" && o.opts.Local != portforward.LocalTLS {
		return nil
	}
	store := &certs.Store{Dir: dir}
	var creds *certs.Credentials
	var err error
	if o.local == "" {
		creds, err = store.Load(ctx)
		if errors.Is(err, fs.ErrNotExist) {
			creds, err = nil, nil
		}
	} else {
		var res *certs.Result
		if res, err = store.Ensure(ctx, req); err == nil {
			creds = res.Credentials
		}
	}
	if err != nil || creds == nil {
		return err
	}
	// A live source: a rotation or renewal by another devmtls, or the
	// renewal this forward makes itself when it runs for long, reaches new
	// connections without a restart.
	if o.live, err = compose.LiveCredentials(store, creds, o.opts.Logf); err != nil {
		return err
	}
	o.opts.Local = portforward.LocalTLS
	o.opts.LocalTLS = o.live.ServerConfig()
	return nil
}

// connect loads kubectl's connection flags, with context and namespace
// replacing --context and -n when set (a forwards file entry's own).
func (o *forwardOptions) connect(context, namespace string) (*rest.Config, kubernetes.Interface, string, error) {
	cfg, ns, err := o.kube.Load(context, namespace)
	if err != nil {
		if errors.As(err, new(*kubeconn.FileError)) {
			return nil, nil, "", usageErrorf("%v", err)
		}
		return nil, nil, "", err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	return cfg, client, ns, nil
}

func (o *forwardOptions) Validate() error {
	if o.file != "" {
		for _, e := range o.entries {
			if err := e.opts.Validate(); err != nil {
				return usageErrorf("%s: forward %s: %v", o.file, e.fwd.As, err)
			}
		}
		return nil
	}
	if err := o.opts.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	return nil
}

func (o *forwardOptions) Run(ctx context.Context) error {
	if o.file != "" {
		return o.runFile(ctx)
	}
	f, err := portforward.New(o.opts)
	if err != nil {
		return err
	}
	if err := f.Start(ctx); err != nil {
		return err
	}
	if o.live != nil {
		go o.live.Run(ctx)
	}
	return f.Serve(ctx)
}
