package hybrid

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/portforward/target"
)

func forward(as string, ports ...int) forwards.Forward {
	f := forwards.Forward{As: as, Protocol: target.ProtocolTCP, Target: target.Target{Kind: target.KindService, Name: as}}
	for _, p := range ports {
		f.Target.Ports = append(f.Target.Ports, target.PortSpec{Local: p, Remote: strconv.Itoa(p)})
	}
	return f
}

// The host ports are chosen once, unprivileged and outside the ephemeral
// ranges, distinct, recorded 0600, and the same on every later call; a
// forward added later gets its own without moving the others.
func TestPlaceChoosesOnceAndKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devmtls")
	ctx := context.Background()
	fs := []forwards.Forward{forward("pricing", 443), forward("db", 5432, 5433)}
	first, err := Place(ctx, dir, fs, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, f := range fs {
		for _, declared := range f.Ports() {
			p := first.Ports.Port(f.As, declared)
			if p < firstHostPort || p > lastHostPort || seen[p] {
				t.Fatalf("%s:%d got host port %d (seen before: %v)", f.As, declared, p, seen[p])
			}
			seen[p] = true
		}
	}
	fi, err := os.Stat(filepath.Join(dir, Dir, placementFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the placement file: %v %v", fi, err)
	}

	route := &Route{Engine: EngineLocal, Listen: "127.0.0.1", HostGateway: "127.0.0.1"}
	fs = append(fs, forward("orders", 8443))
	again, err := Place(ctx, dir, fs, route, "devmtls-relay:0123")
	if err != nil {
		t.Fatal(err)
	}
	for as, ports := range first.Ports {
		for declared, p := range ports {
			if again.Ports.Port(as, declared) != p {
				t.Errorf("%s:%d moved from %d to %d", as, declared, p, again.Ports.Port(as, declared))
			}
		}
	}
	if p := again.Ports.Port("orders", 8443); p == 0 || seen[p] {
		t.Errorf("the added forward got %d", p)
	}
	// Without a route and image (commands that do not ask Docker), the
	// recorded ones come back.
	read, err := Place(ctx, dir, fs, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if read.Route == nil || *read.Route != *route || read.RelayImage != "devmtls-relay:0123" || read.Ports.Port("orders", 8443) != again.Ports.Port("orders", 8443) {
		t.Errorf("recorded placement not returned: %+v", read)
	}
}

// A port something else listens on is never chosen: the real listen check,
// not a guess.
func TestPlaceSkipsAPortInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".devmtls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The port Place would try first for pricing:443 in this directory.
	first, err := choosePort(dir+"\x00pricing\x00443", nil, func(int) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	// If another program holds it already, the test stands as it is.
	if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first))); err == nil {
		defer ln.Close()
	}
	pl, err := Place(context.Background(), dir, []forwards.Forward{forward("pricing", 443)}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.Ports.Port("pricing", 443); got == first || got == 0 {
		t.Fatalf("chose %d, which another listener holds", got)
	}
}

func TestChoosePort(t *testing.T) {
	all := func(int) bool { return true }
	a, err := choosePort("env\x00pricing\x00443", nil, all)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := choosePort("env\x00pricing\x00443", nil, all); b != a {
		t.Errorf("the same seed gave %d then %d", a, b)
	}
	if a < firstHostPort || a > lastHostPort {
		t.Errorf("port %d outside %d-%d", a, firstHostPort, lastHostPort)
	}
	if b, _ := choosePort("env\x00pricing\x00443", map[int]bool{a: true}, all); b == a || b < firstHostPort || b > lastHostPort {
		t.Errorf("a used port was chosen again: %d", b)
	}
	if _, err := choosePort("x", nil, func(int) bool { return false }); err == nil || !strings.Contains(err.Error(), "found no free port") {
		t.Errorf("nothing free: %v", err)
	}
}

// A placement.json from a cloned repository naming a privileged or doubled
// port is refused with the way out.
func TestPlacementDamaged(t *testing.T) {
	for _, data := range []string{`{"ports":{"pricing":{"443":443}}}`, `{"ports":{"a":{"1":20000},"b":{"2":20000}}}`, `{"ports":[]}`, `{"route":{"listen":"not-an-ip"}}`} {
		dir := filepath.Join(t.TempDir(), ".devmtls")
		if err := os.MkdirAll(filepath.Join(dir, Dir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, Dir, placementFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Place(context.Background(), dir, []forwards.Forward{forward("pricing", 443)}, nil, "")
		if err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), "remove it, and devmtls chooses the forwards' host ports anew") {
			t.Errorf("%s: %v", data, err)
		}
	}
}

func TestParseSpecRefusesPrivilegedHostPorts(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"forwards":[{"as":"p","target":"svc/p","ports":["443"],"protocol":"tcp"}],"host_ports":{"p":{"443":443}}}`, "host port 443 for 443"},
		{`{"forwards":[{"as":"p","target":"svc/p","ports":["443"],"protocol":"tcp"}]}`, "host port 0 for 443"},
		{`{"forwards":[{"as":"p","target":"svc/p","ports":["443"],"protocol":"sctp"}],"host_ports":{"p":{"443":20443}}}`, `unknown protocol "sctp"`},
		{`{"gateway":"docker0"}`, `gateway "docker0" is not an IP address`},
	} {
		if _, err := parseSpec("spec.json", []byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.json, err, tc.want)
		}
	}
	spec, err := parseSpec("spec.json", []byte(`{"gateway":"172.17.0.1","relayed":true,"forwards":[{"as":"p","target":"svc/p","ports":["443:https"],"protocol":"postgres"}],"host_ports":{"p":{"443":20443}}}`))
	if err != nil || spec.HostPorts.Port("p", 443) != 20443 || spec.Forwards[0].Protocol != target.ProtocolPostgres {
		t.Errorf("a good spec: %+v %v", spec, err)
	}
}

func TestHostPortInUseError(t *testing.T) {
	err := error(&HostPortInUseError{Forward: "pricing", Port: 20443, Addrs: []string{"127.0.0.1", "172.17.0.1"}, Err: errors.New("bind: address already in use")})
	msg := err.Error()
	for _, want := range []string{"forward pricing: its host port 20443 (on 127.0.0.1 and 172.17.0.1) is in use by another program",
		"so PRICING_ADDR stays the same", "ss -ltnp 'sport = :20443'", "remove forwards/placement.json"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

// Each relay passes its forward's declared ports to the host ports placed
// for them, by host.docker.internal, which the route maps.
func TestPlacementRelays(t *testing.T) {
	fs := []forwards.Forward{forward("pricing", 443), forward("db", 5432, 5433)}
	pl := Placement{Ports: HostPorts{"pricing": {443: 20443}, "db": {5432: 21000, 5433: 21001}}, RelayImage: "devmtls-relay:0123"}
	relays := pl.Relays(fs)
	if len(relays) != 2 || relays[0].As != "pricing" || relays[0].Image != "devmtls-relay:0123" || relays[0].HostGateway != "host-gateway" ||
		!slices.Equal(relays[0].Command, []string{"relay", "443=host.docker.internal:20443"}) ||
		!slices.Equal(relays[1].Command, []string{"relay", "5432=host.docker.internal:21000", "5433=host.docker.internal:21001"}) {
		t.Fatalf("relays before any route: %+v", relays)
	}
	pl.Route = &Route{Engine: EngineRootless, Listen: "10.0.0.5", HostGateway: "10.0.0.5"}
	if got := pl.Relays(fs)[1].HostGateway; got != "10.0.0.5" {
		t.Errorf("with a route the relays reach %s", got)
	}
}
