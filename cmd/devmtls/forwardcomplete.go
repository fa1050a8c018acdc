package main

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devmtls/devmtls/portforward/target"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// completionTimeout bounds every cluster call made for shell completion, so
// a slow or unreachable cluster never holds up the shell: it just completes
// nothing.
const completionTimeout = 2 * time.Second

// completionKinds are the TYPE/ prefixes offered for a target, kubectl's
// short names.
var completionKinds = []string{"pod/", "svc/", "deploy/", "sts/", "rs/"}

// registerFlagCompletion completes --context, --cluster and --user from the
// kubeconfig, and -n from the cluster.
func (o *forwardOptions) registerFlagCompletion(cmd *cobra.Command) {
	fromKubeconfig := func(names func(contexts, clusters, users []string) []string) cobra.CompletionFunc {
		return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			raw, err := o.kube.RawConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			return withPrefix(names(slices.Collect(maps.Keys(raw.Contexts)), slices.Collect(maps.Keys(raw.Clusters)), slices.Collect(maps.Keys(raw.AuthInfos))), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	cmd.RegisterFlagCompletionFunc("context", fromKubeconfig(func(c, _, _ []string) []string { return c }))
	cmd.RegisterFlagCompletionFunc("cluster", fromKubeconfig(func(_, c, _ []string) []string { return c }))
	cmd.RegisterFlagCompletionFunc("user", fromKubeconfig(func(_, _, u []string) []string { return u }))
	cmd.RegisterFlagCompletionFunc("namespace", func(c *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx, client, _, cancel, err := o.completionClient(c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		defer cancel()
		list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []string
		for _, n := range list.Items {
			names = append(names, n.Name)
		}
		return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	})
}

// completionClient connects with the flags given so far, every call bounded
// by completionTimeout.
func (o *forwardOptions) completionClient(c *cobra.Command) (context.Context, kubernetes.Interface, string, context.CancelFunc, error) {
	cfg, ns, err := o.kube.Load("", "")
	if err != nil {
		return nil, nil, "", nil, err
	}
	cfg.Timeout = completionTimeout
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", nil, err
	}
	parent := c.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, completionTimeout)
	return ctx, client, ns, cancel, nil
}

// completeArgs completes TYPE/ prefixes, TYPE/NAME from the cluster, and
// after a target its ports (numbers, and :NAME for named ports).
func (o *forwardOptions) completeArgs(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if o.file != "" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if kind, prefix, ok := strings.Cut(toComplete, "/"); ok {
		t, err := target.ParseTarget(kind + "/x")
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, client, ns, cancel, err := o.completionClient(c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		defer cancel()
		names, err := objectNames(ctx, client, ns, t.Kind)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []string
		for _, n := range withPrefix(names, prefix) {
			out = append(out, kind+"/"+n)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	last, lastIsTarget := lastTarget(args)
	looksLikePort := toComplete != "" && (toComplete[0] == ':' || toComplete[0] >= '0' && toComplete[0] <= '9')
	if last != nil && (lastIsTarget || looksLikePort) {
		ctx, client, ns, cancel, err := o.completionClient(c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		defer cancel()
		ports, err := targetPorts(ctx, client, ns, *last)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return withPrefix(ports, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	return withPrefix(completionKinds, toComplete), cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
}

// lastTarget is the last TYPE/NAME among args, and whether it is the last
// argument (so a port must follow).
func lastTarget(args []string) (*target.Target, bool) {
	for i := len(args) - 1; i >= 0; i-- {
		if strings.Contains(args[i], "/") {
			t, err := target.ParseTarget(args[i])
			if err != nil {
				return nil, false
			}
			return &t, i == len(args)-1
		}
	}
	return nil, false
}

// objectNames lists the names of kind's objects in ns.
func objectNames(ctx context.Context, client kubernetes.Interface, ns string, kind target.Kind) ([]string, error) {
	var names []string
	add := func(m metav1.Object) { names = append(names, m.GetName()) }
	opts := metav1.ListOptions{}
	switch kind {
	case target.KindPod:
		l, err := client.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			add(&l.Items[i])
		}
	case target.KindService:
		l, err := client.CoreV1().Services(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			add(&l.Items[i])
		}
	case target.KindDeployment:
		l, err := client.AppsV1().Deployments(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			add(&l.Items[i])
		}
	case target.KindStatefulSet:
		l, err := client.AppsV1().StatefulSets(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			add(&l.Items[i])
		}
	case target.KindReplicaSet:
		l, err := client.AppsV1().ReplicaSets(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			add(&l.Items[i])
		}
	}
	return names, nil
}

// targetPorts are the ports a target offers, as a port argument spells them:
// the number, and :NAME for a named port (a named remote port needs a local
// one; ":" lets devmtls pick it). Each carries a description for shells that
// show them.
func targetPorts(ctx context.Context, client kubernetes.Interface, ns string, t target.Target) ([]string, error) {
	var out []string
	addPort := func(number int32, name, what string) {
		desc := "\t" + what
		if name != "" {
			desc += " " + name
			out = append(out, ":"+name+desc)
		}
		out = append(out, strconv.Itoa(int(number))+desc)
	}
	var tmpl *corev1.PodSpec
	switch t.Kind {
	case target.KindService:
		svc, err := client.CoreV1().Services(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		for _, p := range svc.Spec.Ports {
			addPort(p.Port, p.Name, "service port")
		}
		return out, nil
	case target.KindPod:
		p, err := client.CoreV1().Pods(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		tmpl = &p.Spec
	case target.KindDeployment:
		d, err := client.AppsV1().Deployments(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		tmpl = &d.Spec.Template.Spec
	case target.KindStatefulSet:
		s, err := client.AppsV1().StatefulSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		tmpl = &s.Spec.Template.Spec
	case target.KindReplicaSet:
		r, err := client.AppsV1().ReplicaSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		tmpl = &r.Spec.Template.Spec
	}
	if tmpl != nil {
		for _, c := range tmpl.Containers {
			for _, p := range c.Ports {
				addPort(p.ContainerPort, p.Name, "container port")
			}
		}
	}
	return out, nil
}

// withPrefix keeps the candidates that start with prefix, sorted.
func withPrefix(candidates []string, prefix string) []string {
	var out []string
	for _, c := range candidates {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
