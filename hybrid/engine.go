package hybrid

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/devmtls/devmtls/compose"
)

// The kinds of Docker engine devmtls tells apart, by what they report.
const (
	// EngineLocal is a Docker Engine running as root on this (Linux)
	// machine: host-gateway is its default bridge's gateway, an address of
	// this machine. Proven by the end-to-end tests (Engine 20.10, devmtls
	// run as root and as a user of the docker group).
	EngineLocal = "local"
	// EngineDesktop is Docker Desktop: the engine runs in a VM, and
	// host.docker.internal reaches this machine's loopback. Not proven here.
	EngineDesktop = "docker-desktop"
	// EngineRootless is rootless Docker: engine and bridge live in a user
	// namespace of this machine, and host-gateway is the bridge's gateway
	// there, not this machine. Not proven here.
	EngineRootless = "rootless"
)

// Route is how the relay containers reach the host listeners.
type Route struct {
	// Engine is the kind of engine (EngineLocal…).
	Engine string `json:"engine"`
	// Listen is where the host listeners listen for the relays besides
	// loopback; "" when the relays reach loopback (Docker Desktop).
	Listen string `json:"listen,omitempty"`
	// HostGateway is what host.docker.internal means inside the relays:
	// Listen, or "host-gateway" on Docker Desktop, whose own mapping leads
	// to this machine.
	HostGateway string `json:"host_gateway"`
}

// HostFacts are what the engine and this machine report, from which the
// route is chosen.
type HostFacts struct {
	// Engine is the engine's GET /info answer.
	Engine compose.EngineInfo
	// BridgeGateway is the engine's default bridge gateway (zero when it
	// reports none that this machine can see).
	BridgeGateway netip.Addr
	// Local are the addresses of this machine's interfaces, in order.
	Local []netip.Addr
}

// ChooseRoute decides how the relays reach the host, from what the engine
// and this machine report:
//
//   - Windows containers: refused; the relays are Linux containers.
//   - Docker Desktop (OperatingSystem "Docker Desktop"): the engine is in a
//     VM and host.docker.internal reaches this machine's loopback, so the
//     host listens on loopback only — never twice on one address.
//   - rootless Docker ("name=rootless" among SecurityOptions): the bridge
//     and host-gateway are inside the daemon's namespace; from there the
//     host is reachable at its own addresses (slirp4netns connects from the
//     host, as podman does for host.containers.internal), so the relays are
//     given the first non-loopback IPv4 address of this machine and the host
//     listens there too, mTLS required.
//   - otherwise, when the bridge gateway is an address of this machine, the
//     engine runs here as root: the relays reach that address.
//   - anything else (an engine on another machine or in a VM devmtls does
//     not know) is refused: its containers could not reach this machine.
func ChooseRoute(h HostFacts) (Route, error) {
	e := h.Engine
	switch {
	case e.OSType != "" && e.OSType != "linux":
		return Route{}, fmt.Errorf("the Docker engine runs %s containers; the relays of x-devmtls.forwards are Linux containers: switch Docker to Linux containers", e.OSType)
	case e.OperatingSystem == compose.DesktopOperatingSystem:
		return Route{Engine: EngineDesktop, HostGateway: "host-gateway"}, nil
	case e.Rootless():
		for _, a := range h.Local {
			if a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
				return Route{Engine: EngineRootless, Listen: a.String(), HostGateway: a.String()}, nil
			}
		}
		return Route{}, fmt.Errorf("rootless Docker: its containers reach this machine only at one of its network addresses, and it has none but loopback; connect a network (the forwards' relays need it)")
	case h.BridgeGateway.IsValid() && slices.Contains(h.Local, h.BridgeGateway):
		return Route{Engine: EngineLocal, Listen: h.BridgeGateway.String(), HostGateway: h.BridgeGateway.String()}, nil
	}
	gw := "none"
	if h.BridgeGateway.IsValid() {
		gw = h.BridgeGateway.String()
	}
	return Route{}, fmt.Errorf("the Docker engine %q (%s) is not on this machine: its bridge gateway (%s) is not an address here, and it is neither Docker Desktop nor rootless Docker, so its containers could not reach the forwards devmtls serves here; run devmtls where the engine runs (DOCKER_HOST)",
		e.Name, e.OperatingSystem, gw)
}

// DetectRoute asks the engine and this machine, then chooses the route.
func DetectRoute(ctx context.Context, d *compose.Docker) (Route, compose.EngineInfo, error) {
	info, err := d.Info(ctx)
	if err != nil {
		return Route{}, info, err
	}
	gw, err := d.BridgeGateway(ctx)
	if err != nil {
		return Route{}, info, err
	}
	local, err := localAddrs()
	if err != nil {
		return Route{}, info, err
	}
	r, err := ChooseRoute(HostFacts{Engine: info, BridgeGateway: gw, Local: local})
	return r, info, err
}

func localAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list this machine's network addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}
