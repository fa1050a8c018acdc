package hybrid

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/hybrid/relay"
)

// engineInfo reads a recorded GET /info answer (testdata/engines/README.md
// says where each comes from).
func engineInfo(t *testing.T, name string) compose.EngineInfo {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "engines", name))
	if err != nil {
		t.Fatal(err)
	}
	var info compose.EngineInfo
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// TestChooseRoute: the route the relays take to the host, for the answers
// each kind of engine gives and what this machine's interfaces are.
func TestChooseRoute(t *testing.T) {
	linux := engineInfo(t, "linux-root-engine-20.10.json")
	desktop := engineInfo(t, "docker-desktop-25.0.3-macos-arm64.json")
	rootless := engineInfo(t, "rootless-20.10-ubuntu-20.04.json")
	windows := linux
	windows.OSType, windows.OperatingSystem = "windows", "Windows Server 2022 Datacenter"
	gw := netip.MustParseAddr("172.17.0.1")
	for _, tc := range []struct {
		name    string
		facts   HostFacts
		want    Route
		wantErr string
	}{
		{"Linux engine as root, devmtls as root or docker group user",
			HostFacts{Engine: linux, BridgeGateway: gw, Local: addrs("127.0.0.1", "192.0.2.2", "172.17.0.1")},
			Route{Engine: EngineLocal, Listen: "172.17.0.1", HostGateway: "172.17.0.1"}, ""},
		{"Linux engine elsewhere (DOCKER_HOST to another machine)",
			HostFacts{Engine: linux, BridgeGateway: gw, Local: addrs("127.0.0.1", "192.0.2.2")},
			Route{}, `the Docker engine "vm" (Debian GNU/Linux 12 (bookworm)) is not on this machine: its bridge gateway (172.17.0.1) is not an address here`},
		{"Linux engine without a gateway devmtls can see",
			HostFacts{Engine: linux, Local: addrs("127.0.0.1", "192.0.2.2")},
			Route{}, "its bridge gateway (none) is not an address here"},
		{"Docker Desktop: the relays reach loopback",
			HostFacts{Engine: desktop, BridgeGateway: gw, Local: addrs("127.0.0.1", "192.168.1.20")},
			Route{Engine: EngineDesktop, HostGateway: "host-gateway"}, ""},
		{"Docker Desktop for Linux, whose VM bridge address happens to exist here too",
			HostFacts{Engine: desktop, BridgeGateway: gw, Local: addrs("127.0.0.1", "172.17.0.1")},
			Route{Engine: EngineDesktop, HostGateway: "host-gateway"}, ""},
		{"rootless Docker: the host's first routable IPv4 address",
			HostFacts{Engine: rootless, BridgeGateway: gw, Local: addrs("127.0.0.1", "::1", "169.254.3.4", "fe80::1", "10.0.0.5", "192.168.1.9")},
			Route{Engine: EngineRootless, Listen: "10.0.0.5", HostGateway: "10.0.0.5"}, ""},
		{"rootless Docker beside a rootful one: still rootless",
			HostFacts{Engine: rootless, BridgeGateway: gw, Local: addrs("127.0.0.1", "10.0.0.5", "172.17.0.1")},
			Route{Engine: EngineRootless, Listen: "10.0.0.5", HostGateway: "10.0.0.5"}, ""},
		{"rootless Docker on a machine with loopback only",
			HostFacts{Engine: rootless, BridgeGateway: gw, Local: addrs("127.0.0.1", "::1")},
			Route{}, "rootless Docker: its containers reach this machine only at one of its network addresses, and it has none but loopback"},
		{"Windows containers",
			HostFacts{Engine: windows, Local: addrs("127.0.0.1")},
			Route{}, "the Docker engine runs windows containers; the relays of x-devmtls.forwards are Linux containers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseRoute(tc.facts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// The recorded answers' platforms decide which executable the relay image
// is made of: this one when it runs in the engine's containers, else the
// one DEVMTLS_RELAY_EXECUTABLE names.
func TestRelayExecutableForEngine(t *testing.T) {
	const self = "/usr/local/bin/devmtls"
	noEnv := func(string) string { return "" }
	linux := engineInfo(t, "linux-root-engine-20.10.json")
	desktop := engineInfo(t, "docker-desktop-25.0.3-macos-arm64.json")
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		if exe, err := relay.Executable(self, linux.OSType, linux.Architecture, noEnv); err != nil || exe != self {
			t.Errorf("x86_64 engine, linux/amd64 devmtls: %q %v", exe, err)
		}
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "arm64" {
		_, err := relay.Executable(self, desktop.OSType, desktop.Architecture, noEnv)
		if err == nil || !strings.Contains(err.Error(), "set "+relay.ExecutableEnv+" to a devmtls built for linux/arm64 (make dist writes dist/devmtls_linux_arm64") {
			t.Errorf("aarch64 Docker Desktop: %v", err)
		}
		// This test binary is no linux/arm64 executable: refused by name.
		testBinary, _ := os.Executable()
		_, err = relay.Executable(self, desktop.OSType, desktop.Architecture, func(string) string { return testBinary })
		if err == nil || !strings.Contains(err.Error(), relay.ExecutableEnv+"="+testBinary) {
			t.Errorf("a foreign executable of the wrong kind: %v", err)
		}
	}
	if _, err := relay.Executable(self, "windows", "x86_64", noEnv); err == nil || !strings.Contains(err.Error(), "need Linux containers") {
		t.Errorf("windows engine: %v", err)
	}
}
