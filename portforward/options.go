package portforward

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// LocalMode is what the local side of a forward speaks.
type LocalMode string

// Local modes.
const (
	// LocalTLS terminates mTLS with the dev keypair: clients present a dev
	// certificate and verify devmtls against the dev anchor.
	LocalTLS LocalMode = "tls"
	// LocalPlain accepts plain TCP; only allowed on loopback.
	LocalPlain LocalMode = "plain"
)

// DefaultPodRunningTimeout is kubectl's --pod-running-timeout default.
const DefaultPodRunningTimeout = time.Minute

// DefaultKeepAlive is the ping interval of Options.KeepAlive: kubectl's
// SPDY ping period, below the idle timeout of the load balancers clouds put
// in front of API servers.
const DefaultKeepAlive = 5 * time.Second

// handshakeTimeout bounds a local client's TLS (or SSLRequest) handshake, so a
// stuck client cannot hold a goroutine forever.
const handshakeTimeout = 15 * time.Second

// Options configure a Forwarder.
type Options struct {
	// Config is the API server connection the default Dialer uses.
	Config *rest.Config
	// Client reads pods, services, controllers and Secrets.
	Client    kubernetes.Interface
	Namespace string
	Targets   []Target
	// Addresses to listen on; "localhost" means 127.0.0.1 and ::1, as in kubectl.
	Addresses  []string
	Secret     string // --secret; "" applies the Service annotation, then "mtls"
	ServerName string // --server-name; "" verifies the chain or the pin only
	Local      LocalMode
	// LocalTLS is the server configuration for LocalTLS: the dev keypair, with
	// client certificates required and verified against the dev anchor.
	LocalTLS *tls.Config
	Protocol Protocol
	// Transport is how the default Dialer reaches the API server.
	Transport Transport
	// Dialer opens the stream connection to a pod; nil means through the API
	// server of Config, with Transport.
	Dialer            PodDialer
	PodRunningTimeout time.Duration
	// KeepGoing starts the listeners even when a target cannot be resolved yet
	// (the error is reported and retried on each connection); used by the
	// background forwards of `devmtls up`.
	KeepGoing bool
	// Pin keeps kubectl's behaviour for service and workload targets: every
	// connection goes to one Ready pod (the one Ready longest) while it stays
	// Ready, instead of round-robin over all Ready pods as the Service would.
	Pin bool
	// ClusterCredsDir, when set, is a directory holding the cluster keypair
	// as files (cert, key and ca, or tls.crt, tls.key and ca.crt; the same
	// detection as for a Secret), read instead of any Secret — for users
	// whose role may not get Secrets. The files are held in memory and read
	// again when they change.
	ClusterCredsDir string
	// KeepAlive is how often the stream connections to the API server are
	// pinged (WebSocket pings and SPDY pings inside, or SPDY pings), so a
	// proxy or load balancer that drops idle connections leaves an idle
	// forwarded connection alone. 0 means DefaultKeepAlive; negative turns
	// pings off.
	KeepAlive time.Duration
	// Events, when set, receives every event of the forward: listening,
	// connection opened and closed, pod switched, error (see Event and
	// NewEventLogger). It is called from many goroutines at once.
	Events func(Event)
	// Out receives one "Forwarding from …" line per listener.
	Out io.Writer
	// Logf receives diagnostics (one line per distinct cause).
	Logf func(format string, args ...any)
}

// withDefaults fills in what the caller left unset.
func (o Options) withDefaults() Options {
	if o.PodRunningTimeout == 0 {
		o.PodRunningTimeout = DefaultPodRunningTimeout
	}
	if o.Protocol == "" {
		o.Protocol = ProtocolTCP
	}
	if o.Local == "" {
		o.Local = LocalTLS
	}
	if o.Transport == "" {
		o.Transport = TransportAuto
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.Dialer == nil {
		o.Dialer = &apiServerDialer{config: o.Config, client: o.Client, transport: o.Transport, keepAlive: max(o.KeepAlive, 0)}
	}
	if len(o.Addresses) == 0 {
		o.Addresses = []string{"localhost"}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Validate checks options that do not need the cluster.
func (o *Options) Validate() error {
	if len(o.Targets) == 0 {
		return errors.New("nothing to forward")
	}
	if o.Local == LocalTLS && o.LocalTLS == nil {
		return errors.New("local TLS needs the dev keypair")
	}
	if o.Local == LocalPlain {
		addrs := expandAddresses(o.Addresses)
		for _, t := range o.Targets {
			for _, p := range t.Ports {
				if p.Address != "" {
					addrs = append(addrs, p.Address)
				}
			}
		}
		for _, a := range addrs {
			if !IsLoopback(a) {
				return fmt.Errorf("refusing to listen on %s with --local plain: anything but loopback needs local mTLS (drop --local plain, or listen on 127.0.0.1)", a)
			}
		}
	}
	if o.Local == LocalTLS && o.LocalTLS != nil && o.LocalTLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return errors.New("local TLS must require client certificates")
	}
	return nil
}

// IsLoopback reports whether a listen address stays on this machine.
func IsLoopback(addr string) bool {
	if addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// expandAddresses turns "localhost" into both loopback addresses.
func expandAddresses(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		for _, part := range strings.Split(a, ",") {
			part = strings.TrimSpace(part)
			if part == "localhost" {
				out = append(out, "127.0.0.1", "::1")
			} else if part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}
