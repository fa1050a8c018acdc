// Package forwards holds what a declared forward is: a service of the test
// cluster that callers reach under a name, with mTLS on both legs.
//
// There is one description of a forward. compose parses the schema
// (x-devmtls.forwards, compose.ParseForwards, which a forwards file shares)
// into Forward, validating every field once; hybrid writes it to the
// background process's spec and serves it; the JSON form below checks the
// same rules again when that spec is read back. The package depends on
// neither YAML, Kubernetes nor Docker, so all of them can use it.
package forwards

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/devmtls/devmtls/portforward/target"
)

// Forward is one declared forward.
type Forward struct {
	// As is the name callers use: the host name containers dial (the
	// network alias of the forward's relay, and a name in the dev
	// certificate) and the prefix of NAME_ADDR for host processes.
	As string
	// Target is what is forwarded to, with the declared ports: each port's
	// Local is the port callers dial (443 in pricing:443), its Remote the
	// target's port, a number or a name.
	Target target.Target
	// Namespace and Context default to the kubeconfig's.
	Namespace string
	Context   string
	// Secret holds the cluster keypair; "" applies the Service's
	// annotation, then "mtls".
	Secret string
	// Creds is a directory holding the cluster keypair as files (cert/key/ca
	// or tls.crt/tls.key/ca.crt), for users who cannot read Secrets; an
	// absolute path once loaded (written relative to the file that declares
	// it). It excludes Secret.
	Creds string
	// ServerName is verified on the pod's certificate; "" verifies the
	// chain or the pin only.
	ServerName string
	Protocol   target.Protocol
}

// dnsLabel is compiled on first use: its counted repetition makes a large
// program, and compiling it in every process cost devmtls start-up ~3M
// instructions (issue 19).
var dnsLabel = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
})

// ValidateName checks a forward's name: a host name containers can dial.
func ValidateName(as string) error {
	if !dnsLabel().MatchString(as) || as == "localhost" {
		return fmt.Errorf("must be a host name containers can use (lower-case letters, digits and '-'), got %q", as)
	}
	return nil
}

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid forward")

// Validate checks every field: what a parser guarantees, checked again where
// a forward is read back from a file devmtls wrote.
func (f Forward) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalid, f.As, fmt.Sprintf(format, args...))
	}
	if err := ValidateName(f.As); err != nil {
		return bad("as %v", err)
	}
	if _, err := target.ParseTarget(f.Target.String()); err != nil || f.Target.Name == "" {
		return bad("target %q is not TYPE/NAME", f.Target.String())
	}
	if len(f.Target.Ports) == 0 {
		return bad("no ports")
	}
	for _, p := range f.Target.Ports {
		parsed, err := target.ParsePortSpec(p.String())
		if err != nil || parsed.Local == 0 || parsed != p {
			return bad("port %q needs the port callers dial and the target's port", p.String())
		}
	}
	if _, err := target.ParseProtocol(string(f.Protocol)); err != nil {
		return bad("%v", err)
	}
	if f.Creds != "" && f.Secret != "" {
		return bad("creds and secret both name the cluster keypair; keep one")
	}
	return nil
}

// Ports are the ports callers dial, in declaration order.
func (f Forward) Ports() []int {
	out := make([]int, len(f.Target.Ports))
	for i, p := range f.Target.Ports {
		out[i] = p.Local
	}
	return out
}

// Addrs are the addresses containers dial: NAME:PORT per declared port.
func (f Forward) Addrs() []string {
	out := make([]string, len(f.Target.Ports))
	for i, p := range f.Target.Ports {
		out[i] = f.As + ":" + strconv.Itoa(p.Local)
	}
	return out
}

// AddrVar is the variable that tells a host process where a forward is,
// e.g. ORDERS_ADDR for "orders" (port 0: the first declared port), and
// ORDERS_5432_ADDR for its declared port 5432.
func AddrVar(as string, port int) string {
	name := strings.ToUpper(strings.ReplaceAll(as, "-", "_"))
	if port == 0 {
		return name + "_ADDR"
	}
	return fmt.Sprintf("%s_%d_ADDR", name, port)
}

// jsonForward is a Forward as files devmtls writes hold it: the target and
// ports spelled as in a compose file, so reading them back goes through the
// same parsers.
type jsonForward struct {
	As         string   `json:"as"`
	Target     string   `json:"target"`
	Ports      []string `json:"ports"`
	Namespace  string   `json:"namespace,omitempty"`
	Context    string   `json:"context,omitempty"`
	Secret     string   `json:"secret,omitempty"`
	Creds      string   `json:"creds,omitempty"`
	ServerName string   `json:"server_name,omitempty"`
	Protocol   string   `json:"protocol"`
}

// MarshalJSON writes the forward as {"as", "target": "svc/NAME", "ports":
// ["LOCAL:REMOTE"], …}.
func (f Forward) MarshalJSON() ([]byte, error) {
	j := jsonForward{As: f.As, Target: f.Target.String(), Namespace: f.Namespace, Context: f.Context,
		Secret: f.Secret, Creds: f.Creds, ServerName: f.ServerName, Protocol: string(f.Protocol), Ports: []string{}}
	for _, p := range f.Target.Ports {
		j.Ports = append(j.Ports, p.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote and validates it.
func (f *Forward) UnmarshalJSON(data []byte) error {
	var j jsonForward
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	t, err := target.ParseTarget(j.Target)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalid, j.As, err)
	}
	for _, s := range j.Ports {
		p, err := target.ParsePortSpec(s)
		if err != nil {
			return fmt.Errorf("%w %q: %v", ErrInvalid, j.As, err)
		}
		t.Ports = append(t.Ports, p)
	}
	out := Forward{As: j.As, Target: t, Namespace: j.Namespace, Context: j.Context, Secret: j.Secret, Creds: j.Creds,
		ServerName: j.ServerName, Protocol: target.Protocol(j.Protocol)}
	if err := out.Validate(); err != nil {
		return err
	}
	*f = out
	return nil
}
