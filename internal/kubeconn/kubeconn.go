// Package kubeconn connects to a cluster the way kubectl does: kubectl's
// connection flags from kubectl's own library (k8s.io/cli-runtime's
// genericclioptions.ConfigFlags: --kubeconfig, --context, -n, --as, --token,
// --server, --request-timeout …), KUBECONFIG merging included, with
// one-sentence errors for the mistakes users make.
//
// The command line (devmtls forward) and the background forwards (which know
// a kubeconfig path list, a context and a namespace per forward) load through
// the same ConfigFlags, so a forward behaves the same in both.
package kubeconn

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Flags are kubectl's connection flags.
type Flags struct {
	// ConfigFlags holds the values; nil fields are neither registered nor
	// applied.
	ConfigFlags *genericclioptions.ConfigFlags
}

// NewFlags returns kubectl's connection flags with kubectl's defaults, minus
// those that do nothing here: --cache-dir (devmtls makes no discovery calls)
// and the deprecated --username/--password.
func NewFlags() *Flags {
	cf := genericclioptions.NewConfigFlags(false)
	cf.CacheDir = nil
	return &Flags{ConfigFlags: cf}
}

// AddFlags registers the flags, spelled and described as kubectl does.
func (f *Flags) AddFlags(fs *pflag.FlagSet) { f.ConfigFlags.AddFlags(fs) }

// Namespace is the -n flag's value ("" when not given).
func (f *Flags) Namespace() string { return deref(f.ConfigFlags.Namespace) }

// Context is the --context flag's value ("" when not given).
func (f *Flags) Context() string { return deref(f.ConfigFlags.Context) }

// Load returns the REST config and the namespace to use. context and
// namespace, when not empty, replace the --context and -n flags (a forward
// that names its own); every other flag applies as given.
func (f *Flags) Load(context, namespace string) (*rest.Config, string, error) {
	cf := f.with(context, namespace)
	if kc := deref(cf.KubeConfig); kc != "" {
		if _, err := os.Stat(kc); err != nil {
			return nil, "", &FileError{Err: err}
		}
	}
	return load(cf.ToRawKubeConfigLoader(), where(cf), deref(cf.Context), deref(cf.APIServer) != "")
}

// with is a copy of the flags with context and namespace replaced when given.
func (f *Flags) with(context, namespace string) *genericclioptions.ConfigFlags {
	b := f.ConfigFlags
	cf := &genericclioptions.ConfigFlags{
		CacheDir: b.CacheDir, KubeConfig: b.KubeConfig, ClusterName: b.ClusterName, AuthInfoName: b.AuthInfoName,
		Context: b.Context, Namespace: b.Namespace, APIServer: b.APIServer, TLSServerName: b.TLSServerName,
		Insecure: b.Insecure, CertFile: b.CertFile, KeyFile: b.KeyFile, CAFile: b.CAFile, BearerToken: b.BearerToken,
		Impersonate: b.Impersonate, ImpersonateUID: b.ImpersonateUID, ImpersonateGroup: b.ImpersonateGroup,
		ImpersonateUserExtra: b.ImpersonateUserExtra, Username: b.Username, Password: b.Password, Timeout: b.Timeout,
		DisableCompression: b.DisableCompression, ProxyURL: b.ProxyURL, WrapConfigFn: b.WrapConfigFn,
	}
	if context != "" {
		cf.Context = &context
	}
	if namespace != "" {
		cf.Namespace = &namespace
	}
	return cf
}

// RawConfig is the merged kubeconfig the flags select (for completing
// --context), without the checks Load makes.
func (f *Flags) RawConfig() (clientcmdapi.Config, error) {
	return f.ConfigFlags.ToRawKubeConfigLoader().RawConfig()
}

// LoadPaths is Load for a process that has no flags of its own but
// remembers the kubeconfig path list another command saw (kubeconfig: a
// $KUBECONFIG-style list; "" is kubectl's default), and a forward's context
// and namespace. One path goes through ConfigFlags' --kubeconfig; a list of
// several is merged as kubectl merges $KUBECONFIG.
func LoadPaths(kubeconfig, context, namespace string) (*rest.Config, string, error) {
	f := NewFlags()
	paths := filepath.SplitList(kubeconfig)
	if len(paths) <= 1 {
		*f.ConfigFlags.KubeConfig = kubeconfig
		return f.Load(context, namespace)
	}
	// ConfigFlags takes one --kubeconfig file and reads a list only from
	// this process's $KUBECONFIG; the remembered list may differ from it,
	// so the merge order is given explicitly, with the same overrides.
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.DefaultClientConfig = &clientcmd.DefaultClientConfig
	rules.Precedence = paths
	overrides := &clientcmd.ConfigOverrides{ClusterDefaults: clientcmd.ClusterDefaults, CurrentContext: context}
	overrides.Context.Namespace = namespace
	return load(clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides), kubeconfig, context, false)
}

// where names the kubeconfig files cf reads, for messages.
func where(cf *genericclioptions.ConfigFlags) string {
	if kc := deref(cf.KubeConfig); kc != "" {
		return kc
	}
	return strings.Join(clientcmd.NewDefaultClientConfigLoadingRules().GetLoadingPrecedence(), string(filepath.ListSeparator))
}

// load checks what users get wrong before client-go's less direct errors:
// an unknown context, or no kubeconfig at all (unless --server says where
// the cluster is, as kubectl allows).
func load(cc clientcmd.ClientConfig, where, context string, hasServer bool) (*rest.Config, string, error) {
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("read kubeconfig %s: %w", where, err)
	}
	if context != "" {
		if _, ok := raw.Contexts[context]; !ok {
			return nil, "", &ContextNotFoundError{Context: context, Kubeconfig: where, Have: slices.Sorted(maps.Keys(raw.Contexts))}
		}
	} else if len(raw.Contexts) == 0 && !hasServer {
		return nil, "", &NoContextsError{Kubeconfig: where}
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

// FileError is an unusable --kubeconfig path (a usage error for the CLI).
type FileError struct{ Err error }

func (e *FileError) Error() string { return "--kubeconfig: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// ContextNotFoundError is a --context (or a forward's context:) the
// kubeconfig does not have.
type ContextNotFoundError struct {
	Context    string
	Kubeconfig string
	Have       []string
}

func (e *ContextNotFoundError) Error() string {
	have := strings.Join(e.Have, ", ")
	if have == "" {
		have = "none"
	}
	return fmt.Sprintf("context %q not found in kubeconfig %s (it has: %s); pick one with --context", e.Context, e.Kubeconfig, have)
}

// NoContextsError is a kubeconfig without any context, and no --server.
type NoContextsError struct{ Kubeconfig string }

func (e *NoContextsError) Error() string {
	return fmt.Sprintf("no Kubernetes cluster configured: kubeconfig %s has no contexts; point --kubeconfig or KUBECONFIG at one", e.Kubeconfig)
}

// IsConfigError reports whether err is one of the kubeconfig mistakes above,
// which a user fixes by changing a flag or file rather than by retrying.
func IsConfigError(err error) bool {
	var (
		fe *FileError
		ce *ContextNotFoundError
		ne *NoContextsError
	)
	return errors.As(err, &fe) || errors.As(err, &ce) || errors.As(err, &ne)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
