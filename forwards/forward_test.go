package forwards

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/portforward/target"
)

func pricing() Forward {
	return Forward{As: "pricing", Namespace: "shop", Protocol: target.ProtocolTCP,
		Target: target.Target{Kind: target.KindService, Name: "pricing", Ports: []target.PortSpec{{Local: 443, Remote: "443"}, {Local: 8443, Remote: "metrics"}}}}
}

func TestJSONRoundTrip(t *testing.T) {
	f := pricing()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"as":"pricing","target":"svc/pricing","ports":["443:443","8443:metrics"],"namespace":"shop","protocol":"tcp"}`; string(data) != want {
		t.Fatalf("got %s\nwant %s", data, want)
	}
	var back Forward
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, f) {
		t.Fatalf("round trip: %+v\nwant %+v", back, f)
	}
}

// A file devmtls wrote is read back through the same checks a compose file
// goes through; each damaged field is refused, naming the forward.
func TestUnmarshalRefusesWhatParsingRefuses(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"protocol", `{"as":"p","target":"svc/p","ports":["443"],"protocol":"udp"}`, `unknown protocol "udp"`},
		{"no protocol", `{"as":"p","target":"svc/p","ports":["443"]}`, `unknown protocol ""`},
		{"name", `{"as":"P_1","target":"svc/p","ports":["443"],"protocol":"tcp"}`, "must be a host name"},
		{"localhost", `{"as":"localhost","target":"svc/p","ports":["443"],"protocol":"tcp"}`, "must be a host name"},
		{"target", `{"as":"p","target":"cm/p","ports":["443"],"protocol":"tcp"}`, `unknown resource type "cm"`},
		{"no ports", `{"as":"p","target":"svc/p","ports":[],"protocol":"tcp"}`, "no ports"},
		{"no caller port", `{"as":"p","target":"svc/p","ports":[":https"],"protocol":"tcp"}`, "needs the port callers dial"},
		{"port range", `{"as":"p","target":"svc/p","ports":["70000:443"],"protocol":"tcp"}`, "not a number in 0-65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Forward
			err := json.Unmarshal([]byte(tc.json), &f)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid with %q", err, tc.want)
			}
			if !reflect.DeepEqual(f, Forward{}) {
				t.Fatalf("a refused forward was half-read: %+v", f)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := pricing().Validate(); err != nil {
		t.Fatal(err)
	}
	f := pricing()
	f.Protocol = "http"
	if err := f.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("protocol http: %v", err)
	}
	f = pricing()
	f.Target.Ports[0].Local = 0
	if err := f.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("port 0: %v", err)
	}
	f = pricing()
	f.Target.Name = ""
	if err := f.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no name: %v", err)
	}
}

func TestAddresses(t *testing.T) {
	f := pricing()
	if got := f.Addrs(); !reflect.DeepEqual(got, []string{"pricing:443", "pricing:8443"}) {
		t.Errorf("Addrs %v", got)
	}
	if got := f.Ports(); !reflect.DeepEqual(got, []int{443, 8443}) {
		t.Errorf("Ports %v", got)
	}
	for _, tc := range []struct {
		as   string
		port int
		want string
	}{{"pricing", 0, "PRICING_ADDR"}, {"db-main", 5432, "DB_MAIN_5432_ADDR"}} {
		if got := AddrVar(tc.as, tc.port); got != tc.want {
			t.Errorf("AddrVar(%q, %d) = %s, want %s", tc.as, tc.port, got, tc.want)
		}
	}
}

func TestCredsExcludesSecretAndRoundTrips(t *testing.T) {
	tg, err := target.ParseTarget("svc/orders")
	if err != nil {
		t.Fatal(err)
	}
	tg.Ports = []target.PortSpec{{Local: 443, Remote: "443"}}
	f := Forward{As: "orders", Target: tg, Creds: "/home/me/creds", Protocol: target.ProtocolTCP}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Forward
	if err := json.Unmarshal(data, &back); err != nil || back.Creds != f.Creds {
		t.Fatalf("round trip of %s: %+v, %v", data, back, err)
	}
	f.Secret = "mtls"
	if err := f.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("creds with secret: %v", err)
	}
}

func TestStablePort(t *testing.T) {
	free := func(int) bool { return true }
	a, err := StablePort("file\x00orders\x00443", nil, free)
	if err != nil || a < FirstStablePort || a > LastStablePort {
		t.Fatalf("%d, %v", a, err)
	}
	if again, _ := StablePort("file\x00orders\x00443", nil, free); again != a {
		t.Errorf("same seed: %d then %d", a, again)
	}
	// A used or busy port moves to the next one up.
	next, _ := StablePort("file\x00orders\x00443", map[int]bool{a: true}, free)
	busy, _ := StablePort("file\x00orders\x00443", nil, func(p int) bool { return p != a })
	if next == a || busy != next {
		t.Errorf("after %d: used → %d, busy → %d", a, next, busy)
	}
	if _, err := StablePort("x", nil, func(int) bool { return false }); err == nil {
		t.Error("no free port found no error")
	}
}
