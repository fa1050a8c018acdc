package kubeconn

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

const kubeconfigA = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: a
  user: {token: token-a}
contexts:
- name: a
  context: {cluster: a, user: a, namespace: ns-a}
current-context: a
`

const kubeconfigB = `apiVersion: v1
kind: Config
clusters:
- name: b
  cluster: {server: "https://127.0.0.2:6443"}
users:
- name: b
  user: {token: token-b}
contexts:
- name: b
  context: {cluster: b, user: b}
`

func write(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// parse registers the flags on a fresh flag set and parses args, as cobra does.
func parse(t *testing.T, args ...string) *Flags {
	t.Helper()
	f := NewFlags()
	fs := pflag.NewFlagSet("forward", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestKubectlFlagsReachTheRESTConfig(t *testing.T) {
	kc := write(t, "config", kubeconfigA)
	f := parse(t, "--kubeconfig", kc, "--as", "jane", "--as-group", "devs", "--token", "flag-token",
		"--server", "https://127.0.0.9:7443", "--request-timeout", "3s", "--tls-server-name", "api.test", "-n", "shop")
	cfg, ns, err := f.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	if ns != "shop" || cfg.Impersonate.UserName != "jane" || strings.Join(cfg.Impersonate.Groups, ",") != "devs" ||
		cfg.BearerToken != "flag-token" || cfg.Host != "https://127.0.0.9:7443" || cfg.Timeout != 3*time.Second || cfg.TLSClientConfig.ServerName != "api.test" {
		t.Errorf("namespace %q, config %+v", ns, cfg)
	}
	// A forward's own context and namespace replace --context and -n.
	if _, ns, err := f.Load("a", "billing"); err != nil || ns != "billing" {
		t.Errorf("entry namespace: %q, %v", ns, err)
	}
}

func TestServerWithoutKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	f := parse(t, "--server", "https://127.0.0.9:7443", "--token", "t", "--insecure-skip-tls-verify")
	cfg, ns, err := f.Load("", "")
	if err != nil || cfg.Host != "https://127.0.0.9:7443" || !cfg.Insecure || ns != "default" {
		t.Fatalf("--server without a kubeconfig: %+v, %q, %v", cfg, ns, err)
	}
	// Without --server an empty kubeconfig is a one-sentence error.
	_, _, err = parse(t).Load("", "")
	if ne := (*NoContextsError)(nil); !errors.As(err, &ne) || !IsConfigError(err) {
		t.Errorf("no kubeconfig: %v", err)
	}
}

func TestUnknownContext(t *testing.T) {
	kc := write(t, "config", kubeconfigA)
	_, _, err := parse(t, "--kubeconfig", kc, "--context", "nope").Load("", "")
	var ce *ContextNotFoundError
	if !errors.As(err, &ce) || ce.Context != "nope" || strings.Join(ce.Have, ",") != "a" || !strings.Contains(err.Error(), "pick one with --context") {
		t.Errorf("unknown context: %v", err)
	}
	_, _, err = parse(t, "--kubeconfig", filepath.Join(t.TempDir(), "missing")).Load("", "")
	if fe := (*FileError)(nil); !errors.As(err, &fe) {
		t.Errorf("missing --kubeconfig: %v", err)
	}
}

// KUBECONFIG lists are merged as kubectl merges them: the first file's
// current context, every file's contexts.
func TestKubeconfigListMerged(t *testing.T) {
	a, b := write(t, "a", kubeconfigA), write(t, "b", kubeconfigB)
	t.Setenv("KUBECONFIG", a+string(filepath.ListSeparator)+b)
	cfg, ns, err := parse(t, "--context", "b").Load("", "")
	if err != nil || cfg.Host != "https://127.0.0.2:6443" || cfg.BearerToken != "token-b" || ns != "default" {
		t.Fatalf("context b from the second file: %+v, %q, %v", cfg, ns, err)
	}
	// The background forwards get the list remembered, not this process's.
	t.Setenv("KUBECONFIG", "")
	cfg, ns, err = LoadPaths(b+string(filepath.ListSeparator)+a, "a", "")
	if err != nil || cfg.Host != "https://127.0.0.1:6443" || ns != "ns-a" {
		t.Fatalf("LoadPaths context a: %+v, %q, %v", cfg, ns, err)
	}
	if _, _, err := LoadPaths(a, "b", ""); !errors.As(err, new(*ContextNotFoundError)) {
		t.Errorf("LoadPaths with one file and another's context: %v", err)
	}
}

// TestWithCarriesEveryFlag: with copies ConfigFlags field by field, so a
// field cli-runtime adds (a new kubectl flag) would be silently dropped from
// every Load. Every exported field is set to a value of its own and must come
// through; a field of a kind this test cannot fill fails it too, so an
// upgrade that adds one is noticed either way.
func TestWithCarriesEveryFlag(t *testing.T) {
	b := &genericclioptions.ConfigFlags{}
	v := reflect.ValueOf(b).Elem()
	typ := v.Type()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		switch f.Type.Kind() {
		case reflect.Pointer:
			// A fresh pointer per field: its identity is what with must keep.
			fv.Set(reflect.New(f.Type.Elem()))
		case reflect.Func:
			fv.Set(reflect.MakeFunc(f.Type, func([]reflect.Value) []reflect.Value {
				t.Fatalf("ConfigFlags.%s was called", f.Name)
				return nil
			}))
		case reflect.String:
			fv.SetString("value of " + f.Name)
		case reflect.Bool:
			fv.SetBool(true)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			fv.SetInt(int64(i + 1))
		case reflect.Float32, reflect.Float64:
			fv.SetFloat(float64(i + 1))
		default:
			t.Fatalf("ConfigFlags.%s is a %s, which this test cannot fill: extend it, and make sure (*Flags).with copies the field", f.Name, f.Type)
		}
	}

	got := reflect.ValueOf((&Flags{ConfigFlags: b}).with("", "")).Elem()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		want, have := v.Field(i), got.Field(i)
		var same bool
		switch f.Type.Kind() {
		case reflect.Pointer, reflect.Func:
			same = !have.IsNil() && have.Pointer() == want.Pointer()
		default:
			same = have.Equal(want)
		}
		if !same {
			t.Errorf("(*Flags).with does not carry over ConfigFlags.%s: add it to the copy in kubeconn.go", f.Name)
		}
	}
}
