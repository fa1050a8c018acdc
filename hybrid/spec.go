// Package hybrid runs the forwards a Compose project declares in
// x-devmtls.forwards: one supervised background devmtls process per
// environment, listening where containers reach it (the Docker bridge) and on
// loopback for host processes, with mTLS on both legs. `devmtls up` starts it,
// `devmtls down` stops it, `devmtls status` and `devmtls env` read what it
// reports.
package hybrid

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Dir is the directory, inside the environment directory, that holds the
// background process's files.
const Dir = "forwards"

// Files in Dir.
const (
	specFile  = "spec.json"  // what to serve, written by devmtls up
	stateFile = "state.json" // what is served, written by the process
	lockFile  = "lock"       // held by the process for its whole life
	// LogFile collects the process's diagnostics.
	LogFile = "forwards.log"
)

// Spec is what the background process serves.
type Spec struct {
	// Kubeconfig is the kubeconfig path list devmtls up saw ($KUBECONFIG or
	// --kubeconfig); "" means kubectl's default.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// ContainerAddress is where containers reach the host (the address
	// host-gateway resolves to); forwards listen there on their own ports.
	ContainerAddress string    `json:"container_address"`
	Forwards         []Forward `json:"forwards"`
}

// Forward is one declared forward.
type Forward struct {
	As         string `json:"as"`
	Target     string `json:"target"`
	Namespace  string `json:"namespace,omitempty"`
	Context    string `json:"context,omitempty"`
	Secret     string `json:"secret,omitempty"`
	Protocol   string `json:"protocol"`
	ServerName string `json:"server_name,omitempty"`
	Ports      []Port `json:"ports"`
}

// Port is the port containers use (Listen) and the target's port (Remote).
type Port struct {
	Listen int    `json:"listen"`
	Remote string `json:"remote"`
}

// Hash identifies a spec, so a running process serving the same one is reused.
func (s Spec) Hash() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// State is what the background process reports, rewritten whenever it changes.
type State struct {
	PID int `json:"pid"`
	// Start tells the process apart from any later one given the same PID:
	// on Linux its start time in clock ticks after boot (/proc/PID/stat field
	// 22), on macOS and Windows its creation time. devmtls down signals PID
	// only when it still has this start (see proveForwards).
	Start string `json:"start"`
	// EnvDir is the environment directory the process serves, absolute.
	EnvDir    string         `json:"env_dir"`
	SpecHash  string         `json:"spec_hash"`
	StartedAt time.Time      `json:"started_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	Forwards  []ForwardState `json:"forwards"`
}

// ForwardState is one forward as served.
type ForwardState struct {
	As        string `json:"as"`
	Target    string `json:"target"`
	Namespace string `json:"namespace"`
	// Containers are the addresses containers reach (bridge address:listen);
	// Host the loopback addresses host processes use, per port.
	Containers []string `json:"containers"`
	Host       []string `json:"host"`
	Pod        string   `json:"pod,omitempty"`
	// DevFingerprint is the SHA-256 fingerprint of the dev certificate the
	// forward serves to containers and host processes; ClusterFingerprint
	// that of the certificate it presents to the pods.
	DevFingerprint     string `json:"dev_fingerprint_sha256,omitempty"`
	ClusterFingerprint string `json:"cluster_fingerprint_sha256,omitempty"`
	// Stale is set by devmtls status, not by the process: the forward serves
	// a dev certificate other than the environment's current one.
	Stale       bool   `json:"stale,omitempty"`
	Active      int64  `json:"active_connections"`
	Total       int64  `json:"total_connections"`
	LastError   string `json:"last_error,omitempty"`
	LastErrorAt string `json:"last_error_at,omitempty"`
}

// AddrVar is the variable that tells a host process where a forward is,
// e.g. ORDERS_ADDR for "orders" (the first port), ORDERS_5432_ADDR per port.
func AddrVar(as string, port int) string {
	name := strings.ToUpper(strings.ReplaceAll(as, "-", "_"))
	if port == 0 {
		return name + "_ADDR"
	}
	return fmt.Sprintf("%s_%d_ADDR", name, port)
}

// rel is the name of a file of Dir inside the environment directory.
func rel(name string) string { return Dir + "/" + name }
