package target

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	got, err := ParseArgs([]string{"svc/orders", "8443:443", ":https", "deploy/payments", "9443"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Kind: KindService, Name: "orders", Ports: []PortSpec{{Local: 8443, Remote: "443"}, {Local: 0, Remote: "https"}}},
		{Kind: KindDeployment, Name: "payments", Ports: []PortSpec{{Local: 9443, Remote: "9443"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// A bare NAME is pod/NAME only in first position, as in kubectl; later
	// it reads as a (named) port.
	if _, err := ParseArgs([]string{"svc/orders", "443", "mypod", "5432"}); err == nil || !strings.Contains(err.Error(), "mypod") {
		t.Fatalf("bare name after a target: %v", err)
	}
	got, err = ParseArgs([]string{"mypod", "5432", "sts/db", "15432:postgres"})
	if err != nil {
		t.Fatal(err)
	}
	want = []Target{
		{Kind: KindPod, Name: "mypod", Ports: []PortSpec{{Local: 5432, Remote: "5432"}}},
		{Kind: KindStatefulSet, Name: "db", Ports: []PortSpec{{Local: 15432, Remote: "postgres"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, alias := range []string{"po/x", "pods/x", "service/x", "services/x", "deployment/x", "statefulset/x", "rs/x", "replicaset/x"} {
		if _, err := ParseArgs([]string{alias, "80"}); err != nil {
			t.Errorf("%s: %v", alias, err)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "nothing to forward"},
		{[]string{"8443:443"}, "comes before any TYPE/NAME"},
		{[]string{"svc/orders"}, "has no port"},
		{[]string{"svc/orders", "80", "pod/x"}, "pod/x has no port"},
		{[]string{"cm/orders", "80"}, "unknown resource type"},
		{[]string{"svc/Orders", "80"}, "invalid name"},
		{[]string{"svc/", "80"}, "empty"},
		{[]string{"svc/orders", "70000"}, "outside 1-65535"},
		{[]string{"svc/orders", "0"}, "outside 1-65535"},
		{[]string{"svc/orders", "x:443"}, "local port"},
		{[]string{"svc/orders", "8443:"}, "remote port is missing"},
		{[]string{"svc/orders", "8443:Https!"}, "neither a port number nor a port name"},
		{[]string{"svc/orders", "https"}, "needs a local port"},
		{[]string{"svc/orders", "-1:443"}, "local port"},
	} {
		_, err := ParseArgs(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseArgs(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("svc/orders 8443:443 :https deploy/x 9443")
	f.Add("mypod 5432")
	f.Add(":0 a/b")
	f.Fuzz(func(t *testing.T, line string) {
		targets, err := ParseArgs(strings.Fields(line))
		if err != nil {
			return
		}
		for _, tg := range targets {
			if len(tg.Ports) == 0 || validateName(tg.Name) != nil {
				t.Fatalf("accepted %+v", tg)
			}
			for _, p := range tg.Ports {
				if p.Local < 0 || p.Local > 65535 || p.Remote == "" {
					t.Fatalf("accepted port %+v", p)
				}
				again, err := ParsePortSpec(p.String())
				if err != nil || again != p {
					t.Fatalf("port %+v does not round-trip: %+v %v", p, again, err)
				}
			}
		}
	})
}
