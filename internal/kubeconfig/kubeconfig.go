// Package kubeconfig loads Kubernetes client configuration the way kubectl
// does (--kubeconfig, $KUBECONFIG, ~/.kube/config; --context; -n), with
// one-sentence errors for the mistakes users make.
package kubeconfig

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options are kubectl's connection flags.
type Options struct {
	Kubeconfig string // explicit file; "" uses $KUBECONFIG, then ~/.kube/config
	Context    string // "" uses the current context
	Namespace  string // "" uses the context's namespace (else "default")
}

// FileError is an unusable --kubeconfig path (a usage error for the CLI).
type FileError struct{ Err error }

func (e *FileError) Error() string { return "--kubeconfig: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// Load returns the REST config and the namespace to use.
func Load(o Options) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		if _, err := os.Stat(o.Kubeconfig); err != nil {
			return nil, "", &FileError{Err: err}
		}
		rules.ExplicitPath = o.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	if o.Namespace != "" {
		overrides.Context.Namespace = o.Namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("read kubeconfig: %w", err)
	}
	where := strings.Join(rules.GetLoadingPrecedence(), ":")
	if o.Kubeconfig != "" {
		where = o.Kubeconfig
	}
	if o.Context != "" {
		if _, ok := raw.Contexts[o.Context]; !ok {
			return nil, "", fmt.Errorf("context %q not found in kubeconfig %s (it has: %s); pick one with --context", o.Context, where, names(raw.Contexts))
		}
	} else if len(raw.Contexts) == 0 {
		return nil, "", fmt.Errorf("no Kubernetes cluster configured: kubeconfig %s has no contexts; point --kubeconfig or KUBECONFIG at one", where)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %w", where, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", err
	}
	return cfg, ns, nil
}

func names[V any](m map[string]V) string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
