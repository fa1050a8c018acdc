package hybrid

import (
	"encoding/json"
	"testing"

	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/portforward/target"
)

// FuzzState feeds arbitrary content to the parser of forwards/state.json, a
// file in a directory that may come from a cloned repository: it must fail
// with an error or yield a PID devmtls could consider, never panic.
func FuzzState(f *testing.F) {
	good, _ := json.Marshal(State{PID: 4242, Start: "123456", EnvDir: "/home/u/p/.devmtls", SpecHash: "0a1b",
		Forwards: []ForwardState{{As: "pricing", Target: "svc/pricing", Host: []string{"127.0.0.1:443"}}}})
	f.Add(good)
	f.Add([]byte(`{"pid":1}`))
	f.Add([]byte(`{"pid":-5,"start":"x"}`))
	f.Add([]byte(`{"pid":99999999999999999999}`))
	f.Add([]byte(`{"pid":12,"start":"1.5","env_dir":"relative","spec_hash":"zz"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseState("state.json", data)
		if err != nil {
			return
		}
		if st.PID <= 1 || st.PID > 1<<22 {
			t.Fatalf("accepted pid %d", st.PID)
		}
		if st.Start != "" && !startPattern.MatchString(st.Start) {
			t.Fatalf("accepted start %q", st.Start)
		}
	})
}

// FuzzSpec does the same for forwards/spec.json: what it accepts is a
// valid forward (protocol included) with unprivileged host ports.
func FuzzSpec(f *testing.F) {
	good, _ := json.Marshal(Spec{Gateway: "172.17.0.1", Relayed: true, HostPorts: HostPorts{"pricing": {443: 20443}},
		Forwards: []forwards.Forward{{As: "pricing", Protocol: target.ProtocolTCP,
			Target: target.Target{Kind: target.KindService, Name: "pricing", Ports: []target.PortSpec{{Local: 443, Remote: "https"}}}}}})
	f.Add(good)
	f.Add([]byte(`{"gateway":"x"}`))
	f.Add([]byte(`{"forwards":[{"as":"a","target":"svc/a","ports":["443"],"protocol":"udp"}],"host_ports":{"a":{"443":80}}}`))
	f.Add([]byte(`{"forwards":[{"as":"a","target":"svc/a","ports":["443"],"protocol":"tcp"}],"host_ports":{"a":{"443":80}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := parseSpec("spec.json", data)
		if err != nil {
			return
		}
		for _, fw := range spec.Forwards {
			if err := fw.Validate(); err != nil {
				t.Fatalf("accepted %v", err)
			}
			for _, p := range fw.Ports() {
				if hp := spec.HostPorts.Port(fw.As, p); hp < 1024 || hp > 65535 {
					t.Fatalf("accepted host port %d", hp)
				}
			}
		}
	})
}

// FuzzPlacement: forwards/placement.json may come from a cloned repository;
// whatever it accepts names only ports an unprivileged process may use, each
// once.
func FuzzPlacement(f *testing.F) {
	good, _ := json.Marshal(Placement{Ports: HostPorts{"pricing": {443: 20443}, "db": {5432: 21000}},
		Route: &Route{Engine: EngineLocal, Listen: "172.17.0.1", HostGateway: "172.17.0.1"}, RelayImage: "devmtls-relay:0123"})
	f.Add(good)
	f.Add([]byte(`{"ports":{"a":{"443":22},"b":{"80":20000}}}`))
	f.Add([]byte(`{"ports":{"a":{"443":20000},"b":{"80":20000}}}`))
	f.Add([]byte(`{"route":{"listen":"example.com"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pl, err := parsePlacement("placement.json", data)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, ports := range pl.Ports {
			for _, p := range ports {
				if p < 1024 || p > 65535 || seen[p] {
					t.Fatalf("accepted port %d", p)
				}
				seen[p] = true
			}
		}
	})
}
