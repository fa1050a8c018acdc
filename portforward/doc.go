// Package portforward is kubectl port-forward that speaks mTLS: it resolves
// pods, services and controllers like kubectl, opens one stream pair per local
// connection through the API server, terminates local TLS with the dev keypair
// and originates mTLS to the pod with the cluster's credentials, and keeps its
// listeners through pod restarts.
//
// A connection ends the way its pod side ended: when the pod finished (its
// TLS close_notify came), the local client gets a close_notify and FIN; when
// the pod side broke (the pod went away, the stream was reset, the API server
// connection was lost, the kubelet reported an error), the local connection
// is reset without a close_notify — after a PostgreSQL ErrorResponse where
// the protocol allows one — so a truncated answer never passes for a whole.
//
// The cluster is reached through two seams: Options.Client (pods, services,
// Secrets; client-go's fake clientset in unit tests) and Options.Dialer, which
// yields the stream connection to a pod (through the API server by default;
// a fake kubelet in unit tests).
package portforward

import spec "github.com/devmtls/devmtls/portforward/target"

// The target types, re-exported so callers of this package need only it.
type (
	// Target is one TYPE/NAME with its ports.
	Target = spec.Target
	// PortSpec is one [LOCAL:]REMOTE pair.
	PortSpec = spec.PortSpec
	// Kind is the type of object a forward targets.
	Kind = spec.Kind
	// Protocol is what runs over a forwarded connection.
	Protocol = spec.Protocol
)

// The kinds of target.
const (
	KindPod         = spec.KindPod
	KindService     = spec.KindService
	KindDeployment  = spec.KindDeployment
	KindStatefulSet = spec.KindStatefulSet
	KindReplicaSet  = spec.KindReplicaSet
)

// The protocols.
const (
	ProtocolTCP      = spec.ProtocolTCP
	ProtocolPostgres = spec.ProtocolPostgres
)

// ParseArgs reads `TYPE/NAME [LOCAL:]REMOTE…` arguments; see target.ParseArgs.
func ParseArgs(args []string) ([]Target, error) { return spec.ParseArgs(args) }

// ParseTarget reads one TYPE/NAME; see target.ParseTarget.
func ParseTarget(s string) (Target, error) { return spec.ParseTarget(s) }

// ParsePortSpec reads one [LOCAL:]REMOTE; see target.ParsePortSpec.
func ParsePortSpec(s string) (PortSpec, error) { return spec.ParsePortSpec(s) }
