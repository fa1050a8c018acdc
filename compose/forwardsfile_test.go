package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadForwardsFile(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "forwards.yaml", `forwards:
  - target: svc/orders
    namespace: shop
    ports: ["8443:443"]
  - target: deploy/billing
    namespace: billing
    context: staging
    creds: ./billing-creds
    protocol: postgres
    server_name: billing.svc
    as: bills
    ports: [5432, "9187:metrics"]
`)
	ff, err := LoadForwardsFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if ff.Project != nil || ff.Path != p || len(ff.Forwards) != 2 {
		t.Fatalf("%+v", ff)
	}
	o, b := ff.Forwards[0], ff.Forwards[1]
	if o.As != "orders" || o.Namespace != "shop" || o.Target.String() != "svc/orders" || o.Ports()[0] != 8443 || o.Creds != "" {
		t.Errorf("orders: %+v", o)
	}
	if b.As != "bills" || b.Context != "staging" || b.Creds != filepath.Join(dir, "billing-creds") || b.Protocol != "postgres" ||
		b.ServerName != "billing.svc" || len(b.Ports()) != 2 || b.Target.Ports[1].Remote != "metrics" {
		t.Errorf("billing: %+v", b)
	}
	for _, f := range ff.Forwards {
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestLoadForwardsFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, data, want string }{
		{"unknown.yaml", "forward:\n  - {target: svc/a, ports: [\"1\"]}\n", "unknown.yaml: forward: unknown key: a forwards file holds only forwards:"},
		{"both.yaml", "forwards:\n  - {target: svc/a, secret: s, creds: c, ports: [\"1\"]}\n", "both.yaml: forwards[0].creds: and secret both name the cluster keypair"},
		{"empty.yaml", "forwards: []\n", "empty.yaml declares no forwards"},
		{"ports.yaml", "forwards:\n  - {target: svc/a}\n", "ports.yaml: forwards[0].ports: is required"},
		{"compose.yaml", "services:\n  api: {image: x}\n", "compose.yaml is a compose file that declares no forwards"},
	} {
		_, err := LoadForwardsFile(context.Background(), writeFile(t, dir, tc.name, tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if tc.name == "empty.yaml" && !errors.Is(err, ErrNoForwards) {
			t.Errorf("empty.yaml: %v is not ErrNoForwards", err)
		}
	}
	if _, err := LoadForwardsFile(context.Background(), filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// A compose file's x-devmtls.forwards is used, with the project; creds are
// relative to the project directory.
func TestLoadForwardsFileFromCompose(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "compose.yaml", `services:
  api: {image: x}
x-devmtls:
  forwards:
    - {target: svc/orders, namespace: shop, creds: creds/shop, ports: ["443"]}
`)
	ff, err := LoadForwardsFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if ff.Project == nil || ff.Project.Dir != dir || len(ff.Forwards) != 1 || ff.Forwards[0].Creds != filepath.Join(dir, "creds", "shop") {
		t.Fatalf("%+v", ff)
	}
}
