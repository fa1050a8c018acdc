// Package hybrid runs the forwards a Compose project declares in
// x-devmtls.forwards: one supervised background devmtls process per
// environment, with mTLS on both legs.
//
// On the host the process listens only on unprivileged ports devmtls chose
// for the environment (placement.go), on loopback for host processes
// (NAME_ADDR) and where the forwards' relay containers reach the host (the
// Docker bridge's gateway on Linux, loopback on Docker Desktop, the host's
// address under rootless Docker; engine.go decides). Containers dial the
// declared name and port (pricing:443); the relay answering to that name
// passes the still-encrypted bytes on (package relay). `devmtls up` starts
// the process, `devmtls down` stops it, `devmtls status` and `devmtls env`
// read what it reports.
package hybrid

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/portforward"
)

// Dir is the directory, inside the environment directory, that holds the
// background process's files.
const Dir = "forwards"

// Files in Dir.
const (
	specFile  = "spec.json"  // what to serve, written by devmtls up
	stateFile = "state.json" // what is served, written by the process
	lockFile  = "lock"       // held by the process for its whole life
	// LogFile collects the process's diagnostics and events, one a line.
	LogFile = "forwards.log"
)

// LogFormatEnv names the environment variable that chooses the format of
// LogFile: text (the default) or json (one object per line, see
// portforward.Event). The process takes it from the devmtls that starts it.
const LogFormatEnv = "DEVMTLS_LOG_FORMAT"

// Spec is what the background process serves.
type Spec struct {
	// Kubeconfig is the kubeconfig path list devmtls up saw ($KUBECONFIG or
	// --kubeconfig); "" means kubectl's default.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Gateway is where the host listeners also listen, besides loopback,
	// for the relays (Route.Listen); "" when loopback is enough.
	Gateway  string             `json:"gateway,omitempty"`
	Forwards []forwards.Forward `json:"forwards"`
	// HostPorts are the ports the host listeners use, per declared port.
	HostPorts HostPorts `json:"host_ports"`
	// Relayed is set when relay containers carry the forwards to the
	// containers (devmtls up); devmtls exec serves host processes only.
	Relayed bool `json:"relayed,omitempty"`
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
	// Containers are the addresses containers dial, NAME:PORT per declared
	// port, answered by the forward's relay; none without relays.
	Containers []string `json:"containers"`
	// Host are the loopback addresses host processes dial (NAME_ADDR), per
	// declared port.
	Host []string `json:"host"`
	// Gateway are the addresses the relays reach besides loopback, per
	// declared port (Spec.Gateway).
	Gateway []string `json:"gateway,omitempty"`
	// Relay is set by devmtls status, not by the process: the state of the
	// forward's relay container.
	Relay *RelayState `json:"relay,omitempty"`
	// Pod is the pod connections go to (pinned), or the pods with a stream
	// connection now, comma-separated (spread); Pods count the connections
	// of each pod.
	Pod  string                 `json:"pod,omitempty"`
	Pods []portforward.PodStats `json:"pods,omitempty"`
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

// RelayState is a relay container as the Engine reports it.
type RelayState struct {
	// Service is the relay's compose service.
	Service string `json:"service"`
	// Container is its container's name; "" when it has none.
	Container string `json:"container,omitempty"`
	// State is the container's state (running, exited…), or "missing".
	State string `json:"state"`
}

// rel is the name of a file of Dir inside the environment directory.
func rel(name string) string { return Dir + "/" + name }
