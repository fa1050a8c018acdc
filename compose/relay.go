package compose

import (
	"fmt"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"
)

// Relay is the relay service the overlay adds for one declared forward.
//
// Containers reach a forward by its name and declared port (pricing:443),
// whatever the Docker host: the relay carries the name as a network alias on
// every network of the project, listens on the declared ports inside the
// container network (where a port below 1024 needs no privilege on the
// host) and passes each connection's bytes, still encrypted, to the devmtls
// listener on the host. It holds no key. devmtls itself listens on the host
// only on unprivileged ports it chose (see package hybrid).
type Relay struct {
	// As is the forward's name: the relay's network alias.
	As string
	// Image is the relay image, built locally from devmtls's executable.
	Image string
	// Command is what the image's entrypoint runs.
	Command []string
	// HostGateway is what host.docker.internal means inside the relay:
	// "host-gateway" (Docker's name for the host) or an address of the host.
	HostGateway string
}

// RelayLabel marks a relay container with the name of its forward.
const RelayLabel = "dev.devmtls.relay"

// relayUser runs the relay: nobody, with every capability dropped. The
// sysctl below lets it listen on the declared ports, which may be below 1024,
// inside its own network namespace only.
const relayUser = "65534:65534"

// RelayService is the compose service name of the relay of forward as.
func RelayService(as string) string { return "devmtls-relay-" + as }

// relayServices renders the relays: the long-form network entries (with
// aliases), which docker-compose v1 needs, and nothing v1 does not know.
func (p *Plan) relayServices() map[string]any {
	out := map[string]any{}
	for _, r := range p.Relays {
		networks := map[string]any{}
		for _, n := range p.Project.Networks {
			networks[n] = map[string]any{"aliases": []any{r.As}}
		}
		svc := map[string]any{
			"image":        r.Image,
			"command":      anyList(r.Command),
			"user":         relayUser,
			"read_only":    true,
			"cap_drop":     []any{"ALL"},
			"security_opt": []any{"no-new-privileges:true"},
			"sysctls":      map[string]any{"net.ipv4.ip_unprivileged_port_start": "0"},
			"extra_hosts":  []any{"host.docker.internal:" + r.HostGateway},
			"labels":       map[string]any{RelayLabel: r.As},
		}
		if len(networks) > 0 {
			svc["networks"] = networks
		}
		out[RelayService(r.As)] = svc
	}
	return out
}

// relayNames are the relays' service names, which every service depends
// on: `up SERVICE` then starts the relays too, and before the service.
func (p *Plan) relayNames() []any {
	var out []any
	for _, r := range p.Relays {
		out = append(out, RelayService(r.As))
	}
	return out
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// projectNetworks are the networks the active services join (by their key
// in the compose files), sorted: where the relays must answer to their
// forward's name. A service with network_mode joins none of its own.
func projectNetworks(tp *types.Project) []string {
	var out []string
	for _, s := range tp.Services {
		for n := range s.Networks {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkRelayNames refuses a compose service that has the name a relay would
// get.
func (p *Project) checkRelayNames(all []string) error {
	for i, f := range p.Config.Forwards {
		if slices.Contains(all, RelayService(f.As)) {
			return fieldErr(fmt.Sprintf("%s.forwards[%d].as", Extension, i),
				"the relay of forward %s would be the compose service %s, which exists already; give the forward another name with as:", f.As, RelayService(f.As))
		}
	}
	return nil
}
