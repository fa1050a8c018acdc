package kubelet

import (
	"context"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

type fakeObjects struct {
	secrets    map[string]*v1.Secret
	configMaps map[string]*v1.ConfigMap
}

func (f fakeObjects) secret(_ context.Context, _, name string) (*v1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (f fakeObjects) configMap(_ context.Context, _, name string) (*v1.ConfigMap, error) {
	if cm, ok := f.configMaps[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func TestResolveEnv(t *testing.T) {
	objs := fakeObjects{
		secrets:    map[string]*v1.Secret{"tls": {Data: map[string][]byte{"cert": []byte("PEM"), "key": []byte("KEY")}}},
		configMaps: map[string]*v1.ConfigMap{"cfg": {Data: map[string]string{"mode": "strict", "LEVEL": "debug"}}},
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u-1", Labels: map[string]string{"app": "web"}},
		Spec:       v1.PodSpec{NodeName: "n1", ServiceAccountName: "sa"},
	}
	c := &v1.Container{
		Name: "web",
		EnvFrom: []v1.EnvFromSource{
			{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}, Prefix: "CFG_"},
			{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "missing"}, Optional: ptr.To(true)}},
		},
		Env: []v1.EnvVar{
			{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NS", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "APP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "CERT", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "tls"}, Key: "cert"}}},
			{Name: "MODE", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
			{Name: "OPT", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "nope", Optional: ptr.To(true)}}},
			{Name: "ADDR", Value: "$(POD_IP):8080"},
			{Name: "LATER", Value: "$(DEFINED_AFTER)"},
			{Name: "ESCAPED", Value: "$$(POD_IP)"},
			{Name: "SVC", Value: "$(KUBERNETES_SERVICE_HOST)"},
			{Name: "DEFINED_AFTER", Value: "x"},
		},
	}
	env, err := resolveEnv(context.Background(), objs, envInput{
		pod: pod, container: c, podIP: "127.1.0.9",
		serviceEnv: map[string]string{"KUBERNETES_SERVICE_HOST": "127.0.0.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CFG_mode": "strict", "CFG_LEVEL": "debug",
		"POD_IP": "127.1.0.9", "NAME": "web-1", "NS": "shop", "APP": "web", "NODE": "n1",
		"CERT": "PEM", "MODE": "strict",
		"ADDR":                    "127.1.0.9:8080",
		"LATER":                   "$(DEFINED_AFTER)", // only earlier variables expand, as in the kubelet
		"ESCAPED":                 "$(POD_IP)",
		"SVC":                     "127.0.0.1",
		"DEFINED_AFTER":           "x",
		"KUBERNETES_SERVICE_HOST": "127.0.0.1",
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env =\n%v\nwant\n%v", env, want)
	}

	cmd, args := expandCommand(&v1.Container{Command: []string{"/bin/srv", "$(NAME)"}, Args: []string{"--listen=$(ADDR)", "$(UNKNOWN)", "$$(NAME)"}}, env)
	if !reflect.DeepEqual(cmd, []string{"/bin/srv", "web-1"}) || !reflect.DeepEqual(args, []string{"--listen=127.1.0.9:8080", "$(UNKNOWN)", "$(NAME)"}) {
		t.Errorf("expandCommand = %q %q", cmd, args)
	}

	for _, bad := range []v1.EnvVar{
		{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Key: "k"}}},
		{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "tls"}, Key: "absent"}}},
	} {
		_, err := resolveEnv(context.Background(), objs, envInput{pod: pod, container: &v1.Container{Env: []v1.EnvVar{bad}}})
		if err == nil {
			t.Errorf("env %+v: want an error", bad.ValueFrom.SecretKeyRef)
		}
	}
}

func TestResolveEnvResourceFieldRef(t *testing.T) {
	c := v1.Container{
		Name:      "c",
		Resources: v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}},
		Env: []v1.EnvVar{
			{Name: "MEM", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory"}}},
			{Name: "CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		},
	}
	pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{c}}}
	env, err := resolveEnv(context.Background(), fakeObjects{}, envInput{
		pod: pod, container: &pod.Spec.Containers[0],
		allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("1Gi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// An unset limit defaults to the node's allocatable, as in the kubelet.
	if env["MEM"] != "67108864" || env["CPU"] != "2" {
		t.Errorf("MEM=%q CPU=%q, want 67108864 and 2", env["MEM"], env["CPU"])
	}
}

func TestContainerIdentity(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{
		RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](2000),
		SupplementalGroups: []int64{3000}, FSGroup: ptr.To[int64](4000),
	}}}
	id, err := containerIdentity(pod, &v1.Container{SecurityContext: &v1.SecurityContext{RunAsUser: ptr.To[int64](1001)}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !id.set || id.uid != 1001 || id.gid != 2000 || !reflect.DeepEqual(id.groups, []uint32{3000, 4000}) {
		t.Errorf("identity = %+v: container runAsUser must win, pod group and groups apply", id)
	}

	id, err = containerIdentity(&v1.Pod{}, &v1.Container{}, 0)
	if err != nil || id.set {
		t.Errorf("no securityContext: %+v, %v: want the kubelet's own user", id, err)
	}

	nonRoot := &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}}}
	if _, err := containerIdentity(nonRoot, &v1.Container{}, 0); err == nil {
		t.Error("runAsNonRoot without runAsUser under a root kubelet: want an error")
	}
	if _, err := containerIdentity(nonRoot, &v1.Container{SecurityContext: &v1.SecurityContext{RunAsUser: ptr.To[int64](0)}}, 0); err == nil {
		t.Error("runAsNonRoot with runAsUser 0: want an error")
	}
}

func TestPodPhase(t *testing.T) {
	running := v1.ContainerStatus{State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
	exit := func(code int32) v1.ContainerStatus {
		return v1.ContainerStatus{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
	}
	backoff := v1.ContainerStatus{
		State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}},
	}
	creating := v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	for _, tc := range []struct {
		name        string
		policy      v1.RestartPolicy
		init, term  bool
		inits, main []v1.ContainerStatus
		want        v1.PodPhase
	}{
		{"creating", v1.RestartPolicyAlways, true, false, nil, []v1.ContainerStatus{creating}, v1.PodPending},
		{"init running", v1.RestartPolicyAlways, false, false, []v1.ContainerStatus{running}, []v1.ContainerStatus{creating}, v1.PodPending},
		{"init failed never", v1.RestartPolicyNever, false, false, []v1.ContainerStatus{exit(1)}, []v1.ContainerStatus{creating}, v1.PodFailed},
		{"running", v1.RestartPolicyAlways, true, false, nil, []v1.ContainerStatus{running}, v1.PodRunning},
		{"backoff always", v1.RestartPolicyAlways, true, false, nil, []v1.ContainerStatus{backoff}, v1.PodRunning},
		{"exited always", v1.RestartPolicyAlways, true, false, nil, []v1.ContainerStatus{exit(0)}, v1.PodRunning},
		{"succeeded never", v1.RestartPolicyNever, true, false, nil, []v1.ContainerStatus{exit(0)}, v1.PodSucceeded},
		{"failed never", v1.RestartPolicyNever, true, false, nil, []v1.ContainerStatus{exit(0), exit(2)}, v1.PodFailed},
		{"one still running", v1.RestartPolicyNever, true, false, nil, []v1.ContainerStatus{exit(2), running}, v1.PodRunning},
		{"succeeded onfailure", v1.RestartPolicyOnFailure, true, false, nil, []v1.ContainerStatus{exit(0)}, v1.PodSucceeded},
		{"deleted, killed", v1.RestartPolicyAlways, true, true, nil, []v1.ContainerStatus{exit(143)}, v1.PodFailed},
		{"deleted, clean exit", v1.RestartPolicyAlways, true, true, nil, []v1.ContainerStatus{exit(0)}, v1.PodSucceeded},
		{"deleted, still stopping", v1.RestartPolicyAlways, true, true, nil, []v1.ContainerStatus{running}, v1.PodRunning},
	} {
		if got := podPhase(tc.policy, tc.init, tc.term, tc.inits, tc.main); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestIPAM(t *testing.T) {
	dir := t.TempDir()
	a, err := newIPAM(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	b, err := newIPAM(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.release()
	if a.cidr() == b.cidr() {
		t.Fatalf("two kubelets share pod network %s", a.cidr())
	}
	seen := map[string]bool{}
	for range 600 {
		ip, err := a.allocate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[ip] || !strings.HasPrefix(ip, "127.") || strings.HasSuffix(ip, ".0") || strings.HasSuffix(ip, ".255") {
			t.Fatalf("bad or duplicate address %s", ip)
		}
		seen[ip] = true
	}
	// A freed address is not handed out again right away.
	a.free("127.1.0.2")
	if ip, _ := a.allocate(); ip == "127.1.0.2" {
		t.Error("freed address reused immediately")
	}
	// The lock goes with the kubelet.
	prefix := a.cidr()
	a.release()
	c, err := newIPAM(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.release()
	if c.cidr() != prefix {
		t.Errorf("after release got %s, want the freed %s", c.cidr(), prefix)
	}
}

func TestResolvePort(t *testing.T) {
	c := &v1.Container{Name: "c", Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	for _, tc := range []struct {
		port intstr.IntOrString
		want int
		ok   bool
	}{
		{intstr.FromInt32(9000), 9000, true},
		{intstr.FromString("http"), 8080, true},
		{intstr.FromString("grpc"), 0, false},
		{intstr.FromInt32(0), 0, false},
	} {
		got, err := resolvePort(tc.port, c)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("resolvePort(%v) = %d, %v", tc.port.String(), got, err)
		}
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\n", 5, "a\nb\n"},
		{"", 1, ""},
	} {
		if got := string(lastLines([]byte(tc.in), tc.n)); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestLookPath(t *testing.T) {
	isExec := func(p string) bool { return p == "/usr/bin/tool" }
	if p, err := lookPath("tool", "/bin:/usr/bin", isExec); err != nil || p != "/usr/bin/tool" {
		t.Errorf("lookPath = %q, %v", p, err)
	}
	if p, err := lookPath("/opt/x", "/bin", isExec); err != nil || p != "/opt/x" {
		t.Errorf("absolute path: %q, %v", p, err)
	}
	if _, err := lookPath("nope", "/bin", isExec); err == nil {
		t.Error("missing command: want an error")
	}
}
