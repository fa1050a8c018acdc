package hybrid

import (
	"context"
	"net"
	"strconv"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/hybrid/relay"
)

// PrepareRelays decides how the engine's containers reach this machine and
// makes the relay image when the engine lacks it, from self (this devmtls)
// or the executable relay.Executable picks; made says it was made now.
func PrepareRelays(ctx context.Context, d *compose.Docker, self string, getenv func(string) string) (route Route, image, exe string, made bool, err error) {
	route, info, err := DetectRoute(ctx, d)
	if err != nil {
		return Route{}, "", "", false, err
	}
	if exe, err = relay.Executable(self, info.OSType, info.Architecture, getenv); err != nil {
		return Route{}, "", "", false, err
	}
	image, made, err = relay.EnsureImage(ctx, d, exe)
	return route, image, exe, made, err
}

// Relays are the relay services of fs as placed: each passes its declared
// ports to host.docker.internal at their host ports, which means the route's
// host gateway ("host-gateway" until an up has chosen the route).
func (pl Placement) Relays(fs []forwards.Forward) []compose.Relay {
	hostGateway := "host-gateway"
	if pl.Route != nil {
		hostGateway = pl.Route.HostGateway
	}
	var out []compose.Relay
	for _, f := range fs {
		var routes []relay.Route
		for _, declared := range f.Ports() {
			routes = append(routes, relay.Route{Listen: declared, To: net.JoinHostPort("host.docker.internal", strconv.Itoa(pl.Ports.Port(f.As, declared)))})
		}
		out = append(out, compose.Relay{As: f.As, Image: pl.RelayImage, Command: relay.Args(routes), HostGateway: hostGateway})
	}
	return out
}
