package hybrid

import (
	"encoding/json"
	"testing"
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

// FuzzSpec does the same for forwards/spec.json.
func FuzzSpec(f *testing.F) {
	good, _ := json.Marshal(Spec{ContainerAddress: "172.17.0.1", Forwards: []Forward{{As: "pricing", Target: "svc/pricing", Protocol: "tcp", Ports: []Port{{Listen: 443, Remote: "https"}}}}})
	f.Add(good)
	f.Add([]byte(`{"container_address":"x"}`))
	f.Add([]byte(`{"container_address":"::1","forwards":[{"as":"a","ports":[{"listen":0}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := parseSpec("spec.json", data)
		if err != nil {
			return
		}
		for _, fw := range spec.Forwards {
			for _, p := range fw.Ports {
				if p.Listen < 1 || p.Listen > 65535 {
					t.Fatalf("accepted port %d", p.Listen)
				}
			}
		}
	})
}
