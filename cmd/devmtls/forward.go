package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/kubeconfig"
	"github.com/devmtls/devmtls/portforward"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeFlags are kubectl's connection flags, spelled as kubectl spells them.
type kubeFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (k *kubeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	cmd.Flags().StringVar(&k.context, "context", "", "the kubeconfig context to use")
	cmd.Flags().StringVarP(&k.namespace, "namespace", "n", "", "namespace of the targets (default: the context's namespace)")
}

// load builds a REST config and namespace the way kubectl does.
func (k *kubeFlags) load() (*rest.Config, string, error) {
	cfg, ns, err := kubeconfig.Load(kubeconfig.Options{Kubeconfig: k.kubeconfig, Context: k.context, Namespace: k.namespace})
	var fe *kubeconfig.FileError
	if errors.As(err, &fe) {
		return nil, "", usageErrorf("%v", err)
	}
	return cfg, ns, err
}

// forwardOptions backs `devmtls forward`.
type forwardOptions struct {
	g                 *globalOptions
	kube              kubeFlags
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
}

func newForwardCmd(g *globalOptions) *cobra.Command {
	o := &forwardOptions{g: g}
	cmd := &cobra.Command{
		Use:   "forward TYPE/NAME [LOCAL:]REMOTE... [TYPE/NAME [LOCAL:]REMOTE...]...",
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
  * one process serves several targets.

Without --server-name, the pod's certificate is verified against the Secret's
CA (or, without a CA, against the certificate itself: a self-signed
certificate that is its own trust anchor) but not against a host name, since
such certificates often carry none; set --server-name (or the Service
annotation devmtls.dev/server-name) to check one.`,
		Example: `  devmtls forward svc/orders 8443:443
  devmtls forward svc/orders :https deploy/payments 9443:8443 -n shop
  devmtls forward --protocol postgres svc/db 5432
  devmtls forward --local plain svc/orders 8080:443   # then: curl http://127.0.0.1:8080`,
		Args: cobra.MinimumNArgs(1),
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
	o.kube.add(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&o.addresses, "address", []string{"localhost"}, "addresses to listen on (comma-separated); anything but loopback requires --local tls")
	fl.StringVar(&o.secret, "secret", "", "Secret holding the cluster's mTLS keypair (default: the Service's devmtls.dev/secret annotation, else mtls)")
	fl.StringVar(&o.serverName, "server-name", "", "name the pod's certificate must carry (also sent as SNI)")
	fl.StringVar(&o.local, "local", "", "what local clients speak: tls (mTLS with the dev keypair) or plain (loopback only); default tls when the environment has credentials, else plain")
	fl.StringVar(&o.protocol, "protocol", "tcp", "tcp, or postgres to negotiate TLS with PostgreSQL's SSLRequest on both sides")
	fl.StringVar(&o.transport, "transport", "auto", "how streams reach the API server: auto (WebSocket, falling back to SPDY, as kubectl), websocket or spdy")
	fl.DurationVar(&o.podRunningTimeout, "pod-running-timeout", portforward.DefaultPodRunningTimeout, "how long to wait for a Running and Ready pod")
	o.tuning.add(fl) // --pin, --cluster-creds, --keepalive: forwardtuning.go
	return cmd
}

func (o *forwardOptions) Complete(cmd *cobra.Command, args []string) error {
	targets, err := portforward.ParseArgs(args)
	if err != nil {
		return usageErrorf("%v", err)
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
	if o.local == "" || local == portforward.LocalTLS {
		dir, err := o.g.envDir()
		if err != nil {
			return err
		}
		store := &certs.Store{Dir: dir}
		var creds *certs.Credentials
		if o.local == "" {
			// The default follows the environment: mTLS when it has credentials.
			creds, err = store.Load(cmd.Context())
			if errors.Is(err, fs.ErrNotExist) {
				creds, err = nil, nil
			}
		} else {
			var res *certs.Result
			if res, err = store.Ensure(cmd.Context(), certs.Request{}); err == nil {
				creds = res.Credentials
			}
		}
		if err != nil {
			return err
		}
		if creds != nil {
			// A live source: a rotation or renewal by another devmtls, or
			// the renewal this forward makes itself when it runs for
			// long, reaches new connections without a restart.
			o.live, err = compose.LiveCredentials(store, creds, o.opts.Logf)
			if err != nil {
				return err
			}
			o.opts.Local = portforward.LocalTLS
			o.opts.LocalTLS = o.live.ServerConfig()
		}
	}
	cfg, ns, err := o.kube.load()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	o.opts.Config, o.opts.Client, o.opts.Namespace = cfg, client, ns
	return nil
}

func (o *forwardOptions) Validate() error {
	if err := o.opts.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	return nil
}

func (o *forwardOptions) Run(ctx context.Context) error {
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
