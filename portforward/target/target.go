// Package target parses what a forward points at, as kubectl port-forward
// spells it: TYPE/NAME targets and [LOCAL:]REMOTE ports, and the protocol
// spoken over it. It has no Kubernetes dependencies, so the compose package can
// validate x-devmtls.forwards with it.
package target

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the type of object a forward targets.
type Kind string

// The kinds devmtls forward understands, with kubectl's aliases.
const (
	KindPod         Kind = "pod"
	KindService     Kind = "service"
	KindDeployment  Kind = "deployment"
	KindStatefulSet Kind = "statefulset"
	KindReplicaSet  Kind = "replicaset"
)

var kindAliases = map[string]Kind{
	"pod": KindPod, "pods": KindPod, "po": KindPod,
	"svc": KindService, "service": KindService, "services": KindService,
	"deploy": KindDeployment, "deployment": KindDeployment, "deployments": KindDeployment,
	"sts": KindStatefulSet, "statefulset": KindStatefulSet, "statefulsets": KindStatefulSet,
	"rs": KindReplicaSet, "replicaset": KindReplicaSet, "replicasets": KindReplicaSet,
}

// Short returns kubectl's short name for the kind (svc, deploy, …).
func (k Kind) Short() string {
	switch k {
	case KindService:
		return "svc"
	case KindDeployment:
		return "deploy"
	case KindStatefulSet:
		return "sts"
	case KindReplicaSet:
		return "rs"
	}
	return string(k)
}

// PortSpec is one [LOCAL:]REMOTE pair. Remote is a number or, as kubectl
// allows, a port name (a service port name for services, a container port name
// otherwise).
type PortSpec struct {
	Local  int    // 0 picks a free port
	Remote string // "443" or "https"
	// Address, when set, is where this port listens instead of the forward's
	// addresses (hybrid forwards listen on the Docker bridge and on loopback).
	Address string
}

// String prints the spec the way the user typed it.
func (p PortSpec) String() string {
	if p.Local == 0 {
		return ":" + p.Remote
	}
	return strconv.Itoa(p.Local) + ":" + p.Remote
}

// RemoteNumber returns the remote port as a number, or 0 if it is a name.
func (p PortSpec) RemoteNumber() int {
	n, err := strconv.Atoi(p.Remote)
	if err != nil {
		return 0
	}
	return n
}

// Target is one TYPE/NAME with its ports.
type Target struct {
	Kind  Kind
	Name  string
	Ports []PortSpec
}

// String is TYPE/NAME with kubectl's short type.
func (t Target) String() string { return t.Kind.Short() + "/" + t.Name }

// ParseArgs reads `TYPE/NAME [LOCAL:]REMOTE… [TYPE/NAME [LOCAL:]REMOTE…]…`.
// Every target needs at least one port; a bare NAME means pod/NAME, as in
// kubectl, but only as the first argument, where no port can be meant.
func ParseArgs(args []string) ([]Target, error) {
	var targets []Target
	for i, arg := range args {
		if strings.Contains(arg, "/") || (i == 0 && !looksLikePort(arg)) {
			t, err := parseTarget(arg)
			if err != nil {
				return nil, err
			}
			targets = append(targets, t)
			continue
		}
		if len(targets) == 0 {
			return nil, fmt.Errorf("port %q comes before any TYPE/NAME: write the target first, e.g. svc/orders %s", arg, arg)
		}
		p, err := ParsePortSpec(arg)
		if err != nil {
			return nil, err
		}
		targets[len(targets)-1].Ports = append(targets[len(targets)-1].Ports, p)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("nothing to forward: give TYPE/NAME and at least one [LOCAL:]REMOTE port, e.g. svc/orders 8443:443")
	}
	for _, t := range targets {
		if len(t.Ports) == 0 {
			return nil, fmt.Errorf("%s has no port: add [LOCAL:]REMOTE after it, e.g. %s 8443:443", t, t)
		}
	}
	return targets, nil
}

func looksLikePort(s string) bool {
	s = strings.TrimPrefix(s, ":")
	if s == "" {
		return true
	}
	_, err := strconv.Atoi(strings.SplitN(s, ":", 2)[0])
	return err == nil || strings.Contains(s, ":")
}

// ParseTarget reads one TYPE/NAME (a bare NAME is a pod).
func ParseTarget(arg string) (Target, error) { return parseTarget(arg) }

func parseTarget(arg string) (Target, error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		kind, name = "pod", arg
	}
	k, ok := kindAliases[strings.ToLower(kind)]
	if !ok {
		return Target{}, fmt.Errorf("unknown resource type %q in %q: use pod, svc, deploy, sts or rs", kind, arg)
	}
	if err := validateName(name); err != nil {
		return Target{}, fmt.Errorf("invalid name in %q: %v", arg, err)
	}
	return Target{Kind: k, Name: name}, nil
}

// validateName checks a Kubernetes object name (DNS subdomain, RFC 1123).
func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("the name is empty")
	}
	if len(name) > 253 {
		return fmt.Errorf("longer than 253 characters")
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.'
		if !ok {
			return fmt.Errorf("%q is not allowed (lower-case letters, digits, '-' and '.')", string(r))
		}
		if (i == 0 || i == len(name)-1) && (r == '-' || r == '.') {
			return fmt.Errorf("must start and end with a letter or digit")
		}
	}
	return nil
}

// ParsePortSpec reads REMOTE, LOCAL:REMOTE or :REMOTE.
func ParsePortSpec(s string) (PortSpec, error) {
	local, remote, hasLocal := strings.Cut(s, ":")
	if !hasLocal {
		remote = local
	}
	var p PortSpec
	if remote == "" {
		return p, fmt.Errorf("invalid port %q: the remote port is missing (use [LOCAL:]REMOTE, e.g. 8443:443)", s)
	}
	if n, err := strconv.Atoi(remote); err == nil {
		if n < 1 || n > 65535 {
			return p, fmt.Errorf("invalid port %q: remote port %d is outside 1-65535", s, n)
		}
	} else if !validPortName(remote) {
		return p, fmt.Errorf("invalid port %q: %q is neither a port number nor a port name", s, remote)
	} else if !hasLocal {
		return p, fmt.Errorf("invalid port %q: a named remote port needs a local port, e.g. 8443:%s or :%s", s, remote, remote)
	}
	p.Remote = remote
	if local == "" {
		return p, nil
	}
	n, err := strconv.Atoi(local)
	if err != nil || n < 0 || n > 65535 {
		return p, fmt.Errorf("invalid port %q: local port %q is not a number in 0-65535", s, local)
	}
	p.Local = n
	return p, nil
}

// validPortName follows Kubernetes' IANA_SVC_NAME rule.
func validPortName(s string) bool {
	if len(s) == 0 || len(s) > 15 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	letter := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			letter = true
		case r >= '0' && r <= '9', r == '-':
		default:
			return false
		}
	}
	return letter
}
