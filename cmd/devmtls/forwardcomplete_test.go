package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/kubeconn"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
)

// fakeAPIServer answers the GET requests completion makes (list and get of
// namespaces, pods, services, deployments, statefulsets and replicasets) from
// client-go's fake object tracker, in the API server's JSON, so completion is
// tested through its real client, flags and timeouts.
type fakeAPIServer struct {
	tracker k8stesting.ObjectTracker
}

// fakeKind is the kind of a resource completion asks for.
func fakeKind(resource string) (schema.GroupVersionKind, bool) {
	switch resource {
	case "namespaces":
		return corev1.SchemeGroupVersion.WithKind("Namespace"), true
	case "pods":
		return corev1.SchemeGroupVersion.WithKind("Pod"), true
	case "services":
		return corev1.SchemeGroupVersion.WithKind("Service"), true
	case "deployments":
		return appsv1.SchemeGroupVersion.WithKind("Deployment"), true
	case "statefulsets":
		return appsv1.SchemeGroupVersion.WithKind("StatefulSet"), true
	case "replicasets":
		return appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), true
	}
	return schema.GroupVersionKind{}, false
}

func (s *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// /api/v1/namespaces[/NS/RESOURCE[/NAME]] or
	// /apis/apps/v1/namespaces/NS/RESOURCE[/NAME]
	path := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/apis/apps/v1/")
	parts := strings.Split(path, "/")
	var ns, resource, name string
	switch {
	case len(parts) == 1 && parts[0] == "namespaces":
		resource = "namespaces"
	case len(parts) >= 3 && len(parts) <= 4 && parts[0] == "namespaces":
		ns, resource = parts[1], parts[2]
		if len(parts) == 4 {
			name = parts[3]
		}
	}
	gvk, ok := fakeKind(resource)
	if r.Method != http.MethodGet || !ok {
		s.write(w, apierrors.NewNotFound(schema.GroupResource{Resource: r.URL.Path}, ""))
		return
	}
	gvr := gvk.GroupVersion().WithResource(resource)
	var obj runtime.Object
	var err error
	if name == "" {
		obj, err = s.tracker.List(gvr, gvk, ns) // the tracker adds "List" to the kind
	} else {
		obj, err = s.tracker.Get(gvr, ns, name)
	}
	if err != nil {
		s.write(w, err)
		return
	}
	s.write(w, obj)
}

// write encodes obj, or an API error as a Status with its code.
func (s *fakeAPIServer) write(w http.ResponseWriter, obj any) {
	code := http.StatusOK
	if err, ok := obj.(error); ok {
		status, ok := err.(apierrors.APIStatus)
		if !ok {
			status = apierrors.NewInternalError(err)
		}
		st := status.Status()
		code, obj = int(st.Code), &st
	}
	codec := scheme.Codecs.LegacyCodec(corev1.SchemeGroupVersion, appsv1.SchemeGroupVersion, metav1.SchemeGroupVersion)
	data, err := runtime.Encode(codec, obj.(runtime.Object))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
}

// completionOptions are forward's options with kubectl's connection flags
// pointing at server, and an empty kubeconfig so the user's own plays no
// part.
func completionOptions(t *testing.T, server string) *forwardOptions {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o := &forwardOptions{kube: kubeconn.NewFlags()}
	cf := o.kube.ConfigFlags
	*cf.KubeConfig, *cf.APIServer, *cf.Insecure, *cf.Namespace = kubeconfig, server, true, "shop"
	return o
}

func podSpec(ports ...corev1.ContainerPort) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: ports}}}}
}

// completeWithin runs completeArgs, failing the test if it never returns.
func completeWithin(t *testing.T, o *forwardOptions, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	t.Helper()
	type result struct {
		got       []string
		directive cobra.ShellCompDirective
	}
	done := make(chan result, 1)
	go func() {
		got, d := o.completeArgs(&cobra.Command{}, args, toComplete)
		done <- result{got, d}
	}()
	select {
	case r := <-done:
		return r.got, r.directive
	case <-time.After(time.Minute): // a hang bound, not a measurement
		t.Fatalf("completing %q after %q never returned", toComplete, args)
		return nil, 0
	}
}

// TestCompleteArgs: forward's arguments complete as kubectl's do — TYPE/
// prefixes, TYPE/NAME from the namespace's objects, then the target's ports
// (numbers and :NAME), and -n from the cluster's namespaces — and an error, a missing kubeconfig or a cluster that
// never answers gives the shell an error directive and no candidates.
func TestCompleteArgs(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "shop"} }
	https := corev1.ContainerPort{Name: "https", ContainerPort: 8443}
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "staging"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		&corev1.Service{ObjectMeta: meta("orders"), Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}},
		&corev1.Service{ObjectMeta: meta("payments"), Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "other"}},
		&corev1.Pod{ObjectMeta: meta("orders-a"), Spec: podSpec(https, corev1.ContainerPort{ContainerPort: 9090}).Spec},
		&appsv1.Deployment{ObjectMeta: meta("orders"), Spec: appsv1.DeploymentSpec{Template: podSpec(https)}},
		&appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{Template: podSpec(corev1.ContainerPort{Name: "postgres", ContainerPort: 5432})}},
		&appsv1.ReplicaSet{ObjectMeta: meta("orders-7d4f"), Spec: appsv1.ReplicaSetSpec{Template: podSpec(corev1.ContainerPort{Name: "metrics", ContainerPort: 9090})}},
	)
	srv := httptest.NewTLSServer(&fakeAPIServer{tracker: client.Tracker()})
	defer srv.Close()
	o := completionOptions(t, srv.URL)

	const kinds = cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	const names = cobra.ShellCompDirectiveNoFileComp
	const failed = cobra.ShellCompDirectiveError
	for _, c := range []struct {
		args       []string
		toComplete string
		want       []string
		directive  cobra.ShellCompDirective
	}{
		{nil, "", []string{"deploy/", "pod/", "rs/", "sts/", "svc/"}, kinds},
		{nil, "s", []string{"sts/", "svc/"}, kinds},
		{nil, "svc/", []string{"svc/orders", "svc/payments"}, names},
		{nil, "svc/o", []string{"svc/orders"}, names},
		{nil, "pod/", []string{"pod/orders-a"}, names},
		{nil, "deploy/", []string{"deploy/orders"}, names},
		{nil, "sts/", []string{"sts/db"}, names},
		{[]string{"svc/orders", "443"}, "rs/", []string{"rs/orders-7d4f"}, names},
		{nil, "bogus/", nil, names},
		{[]string{"svc/orders"}, "", []string{"443\tservice port https", ":https\tservice port https"}, names},
		{[]string{"svc/payments"}, "", []string{"8080\tservice port"}, names},
		{[]string{"pod/orders-a"}, "", []string{"8443\tcontainer port https", "9090\tcontainer port", ":https\tcontainer port https"}, names},
		{[]string{"deploy/orders"}, "", []string{"8443\tcontainer port https", ":https\tcontainer port https"}, names},
		{[]string{"sts/db", "5432"}, ":", []string{":postgres\tcontainer port postgres"}, names},
		{[]string{"rs/orders-7d4f"}, "9", []string{"9090\tcontainer port metrics"}, names},
		{[]string{"svc/orders", "443"}, "", []string{"deploy/", "pod/", "rs/", "sts/", "svc/"}, kinds},
		{[]string{"svc/nope"}, "", nil, failed},
	} {
		got, directive := completeWithin(t, o, c.args, c.toComplete)
		if !slices.Equal(got, c.want) || directive != c.directive {
			t.Errorf("complete %q after %q: %q, directive %d; want %q, directive %d", c.toComplete, c.args, got, directive, c.want, c.directive)
		}
	}

	cmd := &cobra.Command{}
	o.kube.AddFlags(cmd.Flags())
	o.registerFlagCompletion(cmd)
	namespaces, _ := cmd.GetFlagCompletionFunc("namespace")
	if got, directive := namespaces(cmd, nil, "s"); !slices.Equal(got, []string{"shop", "staging"}) || directive != names {
		t.Errorf("complete -n s: %q, directive %d; want shop and staging", got, directive)
	}

	withFile := completionOptions(t, srv.URL)
	withFile.file = "forwards.yaml"
	if got, directive := completeWithin(t, withFile, nil, "svc/"); got != nil || directive != names {
		t.Errorf("with -f: %q, directive %d; want nothing (targets come from the file)", got, directive)
	}

	noKubeconfig := completionOptions(t, srv.URL)
	*noKubeconfig.kube.ConfigFlags.KubeConfig = filepath.Join(t.TempDir(), "missing")
	if got, directive := completeWithin(t, noKubeconfig, nil, "svc/"); got != nil || directive != failed {
		t.Errorf("with a missing --kubeconfig: %q, directive %d; want an error directive", got, directive)
	}

	// A cluster that takes requests and never answers: completion gives up
	// after completionTimeout instead of holding up the shell.
	silent := httptest.NewTLSServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer silent.Close()
	o = completionOptions(t, silent.URL)
	for _, c := range []struct {
		args       []string
		toComplete string
	}{{nil, "svc/"}, {[]string{"svc/orders"}, ""}} {
		if got, directive := completeWithin(t, o, c.args, c.toComplete); got != nil || directive != failed {
			t.Errorf("against a silent server, %q after %q: %q, directive %d; want an error directive", c.toComplete, c.args, got, directive)
		}
	}
}
