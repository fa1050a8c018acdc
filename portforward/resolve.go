package portforward

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// Endpoint is where one local port's connections go right now.
type Endpoint struct {
	Pod        *corev1.Pod
	Port       int32  // container port on the pod
	SecretName string // Secret holding the credentials the pod accepts
	ServerName string // name to verify on the pod's certificate ("" = chain or pin only)
}

// resolver turns a target into a Ready pod and a container port, as kubectl
// port-forward does, and explains in one sentence when it cannot.
type resolver struct {
	client     kubernetes.Interface
	namespace  string
	secret     string // --secret, "" when not given
	serverName string // --server-name, "" when not given
}

// selectorOf returns the pod selector of a target (nil for a pod target) and,
// for services, the Service itself.
func (r *resolver) selectorOf(ctx context.Context, t Target) (labels.Selector, *corev1.Service, error) {
	var sel *metav1.LabelSelector
	var svc *corev1.Service
	var err error
	switch t.Kind {
	case KindPod:
		return nil, nil, nil
	case KindService:
		svc, err = r.client.CoreV1().Services(r.namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, r.apiError(err, "get", "services", t)
		}
		if len(svc.Spec.Selector) == 0 {
			return nil, nil, fmt.Errorf("service %s/%s has no pod selector, so there is no pod to forward to; forward to a pod instead", r.namespace, t.Name)
		}
		return labels.SelectorFromSet(svc.Spec.Selector), svc, nil
	case KindDeployment:
		d, err := r.client.AppsV1().Deployments(r.namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, r.apiError(err, "get", "deployments", t)
		}
		sel = d.Spec.Selector
	case KindStatefulSet:
		s, err := r.client.AppsV1().StatefulSets(r.namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, r.apiError(err, "get", "statefulsets", t)
		}
		sel = s.Spec.Selector
	case KindReplicaSet:
		s, err := r.client.AppsV1().ReplicaSets(r.namespace).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, r.apiError(err, "get", "replicasets", t)
		}
		sel = s.Spec.Selector
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, nil, fmt.Errorf("%s has an invalid selector: %v", t, err)
	}
	return s, nil, nil
}

// pickPod returns the pod connections should go to: the pod itself for a pod
// target, else the Ready pod that has been Ready longest (so a rollout does not
// move connections to a pod that just came up), never a terminating one.
func pickPod(pods []corev1.Pod) *corev1.Pod {
	var ready []*corev1.Pod
	for i := range pods {
		if podReady(&pods[i]) {
			ready = append(ready, &pods[i])
		}
	}
	if len(ready) == 0 {
		return nil
	}
	sort.Slice(ready, func(i, j int) bool {
		ti, tj := readySince(ready[i]), readySince(ready[j])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return ready[i].Name < ready[j].Name
	})
	return ready[0]
}

// podReady: Running, Ready, bound to a node and not being deleted.
func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return p.CreationTimestamp.Time
}

// describePods summarises why no pod qualified, for the error message.
func describePods(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "no pods match its selector"
	}
	var parts []string
	for _, p := range pods {
		state := string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			state = "Terminating"
		} else if p.Status.Phase == corev1.PodRunning && !podReady(&p) {
			state = "Running, not Ready"
		}
		parts = append(parts, p.Name+" "+state)
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("and %d more", len(parts)-4))
	}
	return strings.Join(parts, ", ")
}

// containerPort maps the user's REMOTE to a port on pod: through the Service's
// port → targetPort (by number or name) for services, else by number or
// container port name.
func containerPort(t Target, spec PortSpec, svc *corev1.Service, pod *corev1.Pod) (int32, error) {
	if svc != nil {
		for _, sp := range svc.Spec.Ports {
			if spec.Remote != strconv.Itoa(int(sp.Port)) && spec.Remote != sp.Name {
				continue
			}
			if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
				return 0, fmt.Errorf("service %s/%s port %s is %s; only TCP can be forwarded", svc.Namespace, svc.Name, spec.Remote, sp.Protocol)
			}
			switch {
			case sp.TargetPort.Type == intstr.String:
				return namedContainerPort(pod, sp.TargetPort.StrVal, fmt.Sprintf("service %s/%s port %d targets", svc.Namespace, svc.Name, sp.Port))
			case sp.TargetPort.IntVal != 0:
				return sp.TargetPort.IntVal, nil
			}
			return sp.Port, nil
		}
		return 0, fmt.Errorf("service %s/%s does not expose port %s (it exposes %s)", svc.Namespace, svc.Name, spec.Remote, describeServicePorts(svc))
	}
	if n := spec.RemoteNumber(); n != 0 {
		return int32(n), nil
	}
	return namedContainerPort(pod, spec.Remote, t.String()+" port")
}

func namedContainerPort(pod *corev1.Pod, name, context string) (int32, error) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("%s the port named %q, which no container of pod %s/%s declares", context, name, pod.Namespace, pod.Name)
}

func describeServicePorts(svc *corev1.Service) string {
	var parts []string
	for _, p := range svc.Spec.Ports {
		s := strconv.Itoa(int(p.Port))
		if p.Name != "" {
			s += "/" + p.Name
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no ports"
	}
	return strings.Join(parts, ", ")
}

// secretFor applies the precedence --secret > the Service's annotation > "mtls".
func (r *resolver) secretFor(svc *corev1.Service) string {
	if r.secret != "" {
		return r.secret
	}
	if svc != nil {
		if s := svc.Annotations[SecretAnnotation]; s != "" {
			return s
		}
	}
	return DefaultSecret
}

func (r *resolver) serverNameFor(svc *corev1.Service) string {
	if r.serverName != "" {
		return r.serverName
	}
	if svc != nil {
		return svc.Annotations[ServerNameAnnotation]
	}
	return ""
}

// apiError turns API errors into one sentence with the fix.
func (r *resolver) apiError(err error, verb, resource string, t Target) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found in namespace %q; check the name, or pass -n NAMESPACE", t, r.namespace)
	case apierrors.IsForbidden(err):
		return forbidden(err, verb, resource, r.namespace)
	}
	return fmt.Errorf("%s %s %s: %w", verb, resource, t.Name, err)
}

// forbidden names the verb and resource RBAC refused, and how to check it.
func forbidden(err error, verb, resource, namespace string) error {
	return fmt.Errorf("forbidden: your Kubernetes user may not %s %s in namespace %q (check with: kubectl auth can-i %s %s -n %s): %v",
		verb, resource, namespace, verb, resource, namespace, apiMessage(err))
}

func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(upgradeCause(err), &status) {
		return status.Status().Message
	}
	return err.Error()
}
