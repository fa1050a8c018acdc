package hybrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"time"

	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/internal/envdir"
)

// placementFile records what devmtls decided for the environment's forwards
// and keeps from one run to the next: the host ports, above all, so that
// NAME_ADDR — written into IDE run configurations — never changes.
const placementFile = "placement.json"

// placementLock is held while the placement is read and rewritten.
const placementLock = "placement.lock"

// The host ports devmtls chooses from: forwards.StablePort's range (see there
// why).
const (
	firstHostPort = forwards.FirstStablePort
	lastHostPort  = forwards.LastStablePort
)

// HostPorts maps each forward's declared ports to the host port devmtls
// listens on for it.
type HostPorts map[string]map[int]int

// Port is the host port of forward as's declared port, 0 when there is none.
func (h HostPorts) Port(as string, declared int) int { return h[as][declared] }

// Placement is where the environment's forwards are reached.
type Placement struct {
	// Ports are the host ports, chosen once per forward and declared port.
	Ports HostPorts `json:"ports"`
	// Route and RelayImage are what the last devmtls up decided and built,
	// so that commands without Docker (compose config, compose overlay)
	// show the same relays.
	Route      *Route `json:"route,omitempty"`
	RelayImage string `json:"relay_image,omitempty"`
}

// Place returns the environment's placement for fs: the recorded host
// ports, and for each declared port without one a port chosen now (free on
// loopback and, when route is given, on its Listen address) and recorded.
// A route and image, when given, replace the recorded ones.
func Place(ctx context.Context, envDir string, fs []forwards.Forward, route *Route, image string) (Placement, error) {
	d, err := envdir.Create(envDir)
	if err != nil {
		return Placement{}, err
	}
	defer d.Close()
	if err := d.MkdirAll(Dir, 0o700, -1, -1); err != nil {
		return Placement{}, err
	}
	// Two commands choosing at once must not both take a port.
	lock, err := d.LockWait(ctx, rel(placementLock), 30*time.Second)
	if err != nil {
		return Placement{}, err
	}
	defer lock.Unlock()
	pl, err := readPlacement(d)
	if err != nil {
		return Placement{}, err
	}
	changed := false
	addrs := []string{"127.0.0.1"}
	if route != nil && route.Listen != "" {
		addrs = append(addrs, route.Listen)
	}
	for _, f := range fs {
		for _, declared := range f.Ports() {
			if pl.Ports.Port(f.As, declared) != 0 {
				continue
			}
			port, err := choosePort(d.Path(".")+"\x00"+f.As+"\x00"+strconv.Itoa(declared), pl.Ports.used(), func(p int) bool { return free(addrs, p) })
			if err != nil {
				return Placement{}, fmt.Errorf("forward %s: %w", f.As, err)
			}
			if pl.Ports[f.As] == nil {
				pl.Ports[f.As] = map[int]int{}
			}
			pl.Ports[f.As][declared] = port
			changed = true
		}
	}
	if route != nil && (pl.Route == nil || *pl.Route != *route) {
		pl.Route, changed = route, true
	}
	if image != "" && image != pl.RelayImage {
		pl.RelayImage, changed = image, true
	}
	if changed {
		data, err := json.MarshalIndent(pl, "", "  ")
		if err != nil {
			return Placement{}, err
		}
		if err := d.WriteFile(rel(placementFile), append(data, '\n'), 0o600, -1, -1); err != nil {
			return Placement{}, err
		}
	}
	return pl, nil
}

// PlacementFile is the placement's path inside the environment directory,
// for messages.
func PlacementFile() string { return rel(placementFile) }

func readPlacement(d *envdir.Dir) (Placement, error) {
	data, err := d.ReadFile(rel(placementFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Placement{Ports: HostPorts{}}, nil
	}
	if err != nil {
		return Placement{}, err
	}
	return parsePlacement(d.Path(rel(placementFile)), data)
}

// parsePlacement reads a placement.json. It lives in a directory that may
// come from a cloned repository: every port must be one devmtls could have
// chosen to listen on without privileges.
func parsePlacement(p string, data []byte) (Placement, error) {
	var pl Placement
	damaged := func(what string) (Placement, error) {
		return Placement{}, fmt.Errorf("%s is damaged (%s); remove it, and devmtls chooses the forwards' host ports anew (then run devmtls ide again if you use it)", p, what)
	}
	if err := json.Unmarshal(data, &pl); err != nil {
		return damaged(err.Error())
	}
	if pl.Ports == nil {
		pl.Ports = HostPorts{}
	}
	seen := map[int]bool{}
	for as, ports := range pl.Ports {
		for declared, port := range ports {
			if declared < 1 || declared > 65535 || port < 1024 || port > 65535 || seen[port] {
				return damaged(fmt.Sprintf("forward %s: port %d -> %d", as, declared, port))
			}
			seen[port] = true
		}
	}
	if r := pl.Route; r != nil && r.Listen != "" && net.ParseIP(r.Listen) == nil {
		return damaged(fmt.Sprintf("route listen %q is not an IP address", r.Listen))
	}
	return pl, nil
}

// used are the recorded host ports.
func (h HostPorts) used() map[int]bool {
	out := map[int]bool{}
	for _, ports := range h {
		for _, p := range ports {
			out[p] = true
		}
	}
	return out
}

// choosePort picks a host port with forwards.StablePort: the start derived
// from seed spreads environments over the range, so two projects rarely
// probe the same ports.
func choosePort(seed string, used map[int]bool, free func(int) bool) (int, error) {
	p, err := forwards.StablePort(seed, used, free)
	if err != nil {
		return 0, fmt.Errorf("its host listener: %w", err)
	}
	return p, nil
}

// free reports whether port can be listened on at every address.
func free(addrs []string, port int) bool {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
