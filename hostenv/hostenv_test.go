package hostenv

import (
	"reflect"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/certs"
)

func testFiles() certs.FileSet {
	return certs.FileSet{Cert: "/p/cert", Key: "/p/key", CA: "/p/ca", KeyCert: "/p/key+cert"}
}

func names(vars []Var) []string {
	var out []string
	for _, v := range vars {
		out = append(out, v.Name)
	}
	return out
}

func TestBuildDefaults(t *testing.T) {
	vars, err := Build(Input{Files: testFiles(), Names: DefaultNames()})
	if err != nil {
		t.Fatal(err)
	}
	want := []Var{
		{"MTLS_CERT", "/p/cert", true},
		{"MTLS_KEY", "/p/key", true},
		{"MTLS_CA", "/p/ca", true},
		{"MTLS_KEY_CERT", "/p/key+cert", true},
	}
	if !reflect.DeepEqual(vars, want) {
		t.Fatalf("Build = %+v\nwant %+v", vars, want)
	}
}

func TestBuildPostgresTrustAndExtra(t *testing.T) {
	vars, err := Build(Input{Files: testFiles(), Names: DefaultNames(), Postgres: true, RuntimeTrust: true,
		Extra: []Var{{Name: "ORDERS_ADDR", Value: "127.0.0.1:4443"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range vars {
		got[v.Name] = v.Value
	}
	want := map[string]string{
		"MTLS_CERT": "/p/cert", "MTLS_KEY": "/p/key", "MTLS_CA": "/p/ca", "MTLS_KEY_CERT": "/p/key+cert",
		"PGSSLCERT": "/p/cert", "PGSSLKEY": "/p/key", "PGSSLROOTCERT": "/p/ca", "PGSSLMODE": "verify-full",
		"NODE_EXTRA_CA_CERTS": "/p/ca", "SSL_CERT_FILE": "/p/ca", "REQUESTS_CA_BUNDLE": "/p/ca", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": "/p/ca",
		"ORDERS_ADDR": "127.0.0.1:4443",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Build = %v\nwant %v", got, want)
	}
	if last := vars[len(vars)-1]; last.Name != "ORDERS_ADDR" || last.Path {
		t.Errorf("extra variable should come last and not be a path: %+v", last)
	}
	// Every emitted name (but the extra) is one KnownNames reports, so IDE
	// merges can clean them up later.
	known := strings.Join(KnownNames(DefaultNames()), " ")
	for _, v := range vars[:len(vars)-1] {
		if !strings.Contains(" "+known+" ", " "+v.Name+" ") {
			t.Errorf("KnownNames misses %s", v.Name)
		}
	}
}

func TestBuildCustomAndOmittedNames(t *testing.T) {
	vars, err := Build(Input{Files: testFiles(), Names: certs.FileSet{Cert: "TLS_CRT", Key: "TLS_KEY", CA: "TLS_CA"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(vars); !reflect.DeepEqual(got, []string{"TLS_CRT", "TLS_KEY", "TLS_CA"}) {
		t.Fatalf("names = %v", got)
	}
}

func TestBuildRejects(t *testing.T) {
	for name, in := range map[string]Input{
		"invalid name":        {Files: testFiles(), Names: certs.FileSet{Cert: "MTLS-CERT"}},
		"leading digit":       {Files: testFiles(), Names: certs.FileSet{Cert: "1CERT"}},
		"duplicate":           {Files: testFiles(), Names: certs.FileSet{Cert: "X", Key: "X"}},
		"duplicate by case":   {Files: testFiles(), Names: certs.FileSet{Cert: "x", Key: "X"}},
		"extra collides":      {Files: testFiles(), Names: DefaultNames(), Extra: []Var{{Name: "MTLS_CA", Value: "v"}}},
		"postgres collides":   {Files: testFiles(), Names: certs.FileSet{Cert: "PGSSLCERT"}, Postgres: true},
		"missing file":        {Files: certs.FileSet{Cert: "/p/cert"}, Names: DefaultNames()},
		"invalid extra name":  {Files: testFiles(), Extra: []Var{{Name: "A=B", Value: "v"}}},
		"empty extra name":    {Files: testFiles(), Extra: []Var{{Name: "", Value: "v"}}},
		"trust with no CA":    {Files: certs.FileSet{Cert: "/c"}, Names: certs.FileSet{Cert: "C"}, RuntimeTrust: true},
		"postgres with no CA": {Files: certs.FileSet{Cert: "/c", Key: "/k"}, Postgres: true},
	} {
		if _, err := Build(in); err == nil {
			t.Errorf("%s: Build accepted %+v", name, in)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %v", name, err)
		}
	}
}

func TestMerge(t *testing.T) {
	env := []string{"PATH=/bin", "MTLS_CA=/old", "=C:=C:\\", "HOME=/h"}
	got := Merge(env, []Var{{Name: "MTLS_CA", Value: "/new"}, {Name: "MTLS_CERT", Value: "/c"}})
	want := []string{"PATH=/bin", "=C:=C:\\", "HOME=/h", "MTLS_CA=/new", "MTLS_CERT=/c"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(env, []string{"PATH=/bin", "MTLS_CA=/old", "=C:=C:\\", "HOME=/h"}) {
		t.Fatalf("Merge changed its input: %q", env)
	}
}
