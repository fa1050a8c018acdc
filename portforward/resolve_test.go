package portforward

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func testPod(name string, ready bool, readyAt time.Time) corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{
			Name:  "app",
			Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}, {Name: "metrics", ContainerPort: 9090}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(readyAt)},
		}},
	}
}

func TestPickPod(t *testing.T) {
	now := time.Now()
	old := testPod("old", true, now.Add(-time.Hour))
	young := testPod("young", true, now)
	notReady := testPod("warming", false, now.Add(-2*time.Hour))
	terminating := testPod("leaving", true, now.Add(-3*time.Hour))
	terminating.DeletionTimestamp = &metav1.Time{Time: now}
	if p := pickPod([]corev1.Pod{young, notReady, terminating, old}); p == nil || p.Name != "old" {
		t.Fatalf("picked %v, want the pod Ready longest", p)
	}
	if p := pickPod([]corev1.Pod{notReady, terminating}); p != nil {
		t.Fatalf("picked %s, want none", p.Name)
	}
	if got := describePods([]corev1.Pod{notReady, terminating}); !strings.Contains(got, "warming Running, not Ready") || !strings.Contains(got, "leaving Terminating") {
		t.Errorf("describePods = %q", got)
	}
}

func TestContainerPort(t *testing.T) {
	pod := testPod("p", true, time.Now())
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "https", Port: 443, TargetPort: intstr.FromString("https")},
		{Name: "admin", Port: 8081, TargetPort: intstr.FromInt32(9091)},
		{Name: "same", Port: 7000},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		{Name: "ghost", Port: 1234, TargetPort: intstr.FromString("nope")},
	}}}
	tgt := Target{Kind: KindService, Name: "orders"}
	for remote, want := range map[string]int32{"443": 8443, "https": 8443, "8081": 9091, "admin": 9091, "7000": 7000} {
		got, err := containerPort(tgt, PortSpec{Remote: remote}, svc, &pod)
		if err != nil || got != want {
			t.Errorf("service port %s -> %d, %v; want %d", remote, got, err, want)
		}
	}
	for remote, want := range map[string]string{
		"80":   "does not expose port 80 (it exposes 443/https, 8081/admin, 7000/same, 53/dns, 1234/ghost)",
		"53":   "only TCP",
		"1234": `the port named "nope"`,
	} {
		if _, err := containerPort(tgt, PortSpec{Remote: remote}, svc, &pod); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("service port %s: %v, want %q", remote, err, want)
		}
	}
	podTarget := Target{Kind: KindPod, Name: "p"}
	if got, err := containerPort(podTarget, PortSpec{Remote: "metrics"}, nil, &pod); err != nil || got != 9090 {
		t.Errorf("pod named port: %d %v", got, err)
	}
	if got, err := containerPort(podTarget, PortSpec{Remote: "5432"}, nil, &pod); err != nil || got != 5432 {
		t.Errorf("pod numbered port: %d %v", got, err)
	}
}

func TestSecretPrecedence(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{SecretAnnotation: "orders-mtls"}}}
	if got := (&resolver{secret: "flag"}).secretFor(svc); got != "flag" {
		t.Errorf("--secret must win, got %s", got)
	}
	if got := (&resolver{}).secretFor(svc); got != "orders-mtls" {
		t.Errorf("annotation must beat the default, got %s", got)
	}
	if got := (&resolver{}).secretFor(nil); got != DefaultSecret {
		t.Errorf("default = %s", got)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"localhost": true, "127.0.0.1": true, "127.8.9.1": true, "::1": true, "0.0.0.0": false, "172.17.0.1": false, "::": false, "example.com": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%s) != %v", addr, want)
		}
	}
	o := Options{Targets: []Target{{}}, Local: LocalPlain, Addresses: []string{"127.0.0.1", "0.0.0.0"}}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "0.0.0.0") {
		t.Fatalf("plain on 0.0.0.0 accepted: %v", err)
	}
}

// TestSelectorOfWorkloads: a deploy/, sts/ or rs/ target resolves to its
// object's selector, and each way the lookup fails is one sentence naming
// the target and the fix.
func TestSelectorOfWorkloads(t *testing.T) {
	ctx := context.Background()
	good := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders"}}
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near", Values: []string{"orders"}}}}
	for _, kind := range []Kind{KindDeployment, KindStatefulSet, KindReplicaSet} {
		tgt := Target{Kind: kind, Name: "orders"}
		r := &resolver{client: fake.NewClientset(workload(kind, good)), namespace: rigNamespace}
		sel, svc, err := r.selectorOf(ctx, tgt)
		if err != nil || sel.String() != "app=orders" || svc != nil {
			t.Errorf("%s: selector %v, service %v, %v; want app=orders and no service", tgt, sel, svc, err)
		}

		_, _, err = r.selectorOf(ctx, Target{Kind: kind, Name: "nope"})
		if want := kind.Short() + `/nope not found in namespace "shop"; check the name, or pass -n NAMESPACE`; err == nil || err.Error() != want {
			t.Errorf("%s/nope: %v; want %q", kind.Short(), err, want)
		}

		r = &resolver{client: fake.NewClientset(workload(kind, bad)), namespace: rigNamespace}
		if _, _, err := r.selectorOf(ctx, tgt); err == nil || !strings.HasPrefix(err.Error(), tgt.String()+" has an invalid selector: ") {
			t.Errorf("%s with operator Near: %v", tgt, err)
		}

		client := fake.NewClientset(workload(kind, good))
		client.PrependReactor("get", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps"}, "orders", errors.New("RBAC says no"))
		})
		r = &resolver{client: client, namespace: rigNamespace}
		resource := map[Kind]string{KindDeployment: "deployments", KindStatefulSet: "statefulsets", KindReplicaSet: "replicasets"}[kind]
		if _, _, err := r.selectorOf(ctx, tgt); err == nil || !strings.Contains(err.Error(), "kubectl auth can-i get "+resource+" -n shop") {
			t.Errorf("%s, forbidden: %v; want the kubectl auth can-i get %s hint", tgt, err, resource)
		}

		client = fake.NewClientset(workload(kind, good))
		client.PrependReactor("get", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("connection refused")
		})
		r = &resolver{client: client, namespace: rigNamespace}
		if _, _, err := r.selectorOf(ctx, tgt); err == nil || err.Error() != "get "+resource+" orders: connection refused" {
			t.Errorf("%s, unreachable: %v", tgt, err)
		}
	}
}
