package kubelet

import (
	"context"
	"fmt"
	"os/user"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	resourcehelper "k8s.io/kubernetes/pkg/api/v1/resource"
	podshelper "k8s.io/kubernetes/pkg/apis/core/pods"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
)

// defaultPath is what container images conventionally set; host processes
// get it instead of the kubelet's own PATH so pods do not depend on how the
// kubelet happened to be started.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// objectGetter fetches the Secrets and ConfigMaps a pod's env refers to.
// The kubelet reads them through the API server with its node credentials,
// so the Node authorizer only lets it read objects its own pods reference.
type objectGetter interface {
	secret(ctx context.Context, namespace, name string) (*v1.Secret, error)
	configMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
}

// envInput is everything a container's environment is computed from.
type envInput struct {
	pod         *v1.Pod
	container   *v1.Container
	podIP       string
	serviceEnv  map[string]string
	allocatable v1.ResourceList
}

// resolveEnv computes a container's environment the way the kubelet's
// makeEnvironmentVariables does: envFrom first, then env in order, where
// plain values expand $(VAR) references to earlier variables and service
// variables, and valueFrom reads fields, resources, ConfigMaps and Secrets.
// It returns the variables the container declares plus the service
// variables; runtime defaults (PATH, HOME, HOSTNAME) are added by the caller.
func resolveEnv(ctx context.Context, get objectGetter, in envInput) (map[string]string, error) {
	pod, c := in.pod, in.container
	env := map[string]string{}
	secrets := map[string]*v1.Secret{}
	configMaps := map[string]*v1.ConfigMap{}

	getSecret := func(name string) (*v1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := get.secret(ctx, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}
	getConfigMap := func(name string) (*v1.ConfigMap, error) {
		if cm, ok := configMaps[name]; ok {
			return cm, nil
		}
		cm, err := get.configMap(ctx, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		configMaps[name] = cm
		return cm, nil
	}
	optional := func(b *bool) bool { return b != nil && *b }

	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := getConfigMap(from.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("configmap %q: %w", from.ConfigMapRef.Name, err)
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			s, err := getSecret(from.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("secret %q: %w", from.SecretRef.Name, err)
			}
			for k, v := range s.Data {
				env[from.Prefix+k] = string(v)
			}
		}
	}

	mapping := expansion.MappingFuncFor(env, in.serviceEnv)
	for _, ev := range c.Env {
		val := ev.Value
		switch {
		case val != "":
			val = expansion.Expand(val, mapping)
		case ev.ValueFrom == nil:
		case ev.ValueFrom.FieldRef != nil:
			v, err := podFieldValue(ev.ValueFrom.FieldRef, pod, in.podIP)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", ev.Name, err)
			}
			val = v
		case ev.ValueFrom.ResourceFieldRef != nil:
			fs := ev.ValueFrom.ResourceFieldRef
			name := fs.ContainerName
			if name == "" {
				name = c.Name
			}
			v, err := resourcehelper.ExtractResourceValueByContainerNameAndNodeAllocatable(fs, pod, name, in.allocatable)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", ev.Name, err)
			}
			val = v
		case ev.ValueFrom.ConfigMapKeyRef != nil:
			ref := ev.ValueFrom.ConfigMapKeyRef
			cm, err := getConfigMap(ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("env %s: configmap %q: %w", ev.Name, ref.Name, err)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if optional(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("env %s: couldn't find key %s in ConfigMap %s/%s", ev.Name, ref.Key, pod.Namespace, ref.Name)
			}
			val = v
		case ev.ValueFrom.SecretKeyRef != nil:
			ref := ev.ValueFrom.SecretKeyRef
			s, err := getSecret(ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("env %s: secret %q: %w", ev.Name, ref.Name, err)
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if optional(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("env %s: couldn't find key %s in Secret %s/%s", ev.Name, ref.Key, pod.Namespace, ref.Name)
			}
			val = string(v)
		default:
			return nil, fmt.Errorf("env %s: this valueFrom source is not supported by the test kubelet", ev.Name)
		}
		env[ev.Name] = val
	}
	for k, v := range in.serviceEnv {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	return env, nil
}

// podFieldValue resolves a downward-API fieldRef as the kubelet's
// podFieldSelectorRuntimeValue does.
func podFieldValue(fs *v1.ObjectFieldSelector, pod *v1.Pod, podIP string) (string, error) {
	version := fs.APIVersion
	if version == "" {
		version = "v1" // what API defaulting fills in
	}
	path, _, err := podshelper.ConvertDownwardAPIFieldLabel(version, fs.FieldPath, "")
	if err != nil {
		return "", err
	}
	switch path {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	}
	return fieldpath.ExtractFieldPathAsString(pod, path)
}

// expandCommand substitutes $(VAR) in command and args with the container's
// resolved environment, exactly as ExpandContainerCommandAndArgs does:
// unknown references stay as written and $$ escapes a literal $.
func expandCommand(c *v1.Container, env map[string]string) (command, args []string) {
	mapping := expansion.MappingFuncFor(env)
	for _, s := range c.Command {
		command = append(command, expansion.Expand(s, mapping))
	}
	for _, s := range c.Args {
		args = append(args, expansion.Expand(s, mapping))
	}
	return command, args
}

// processEnv turns the resolved variables into a process environment on top
// of the defaults a container runtime provides.
func processEnv(env map[string]string, hostname, home string) []string {
	all := map[string]string{
		"PATH":     defaultPath,
		"HOSTNAME": hostname,
		"HOME":     home,
	}
	for k, v := range env {
		all[k] = v
	}
	out := make([]string, 0, len(all))
	for k, v := range all {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// identity is the user a container runs as.
type identity struct {
	uid, gid uint32
	groups   []uint32
	home     string
	set      bool // false: run as the kubelet's own user
}

// containerIdentity applies securityContext.runAsUser/runAsGroup (container
// level over pod level) and the pod's supplemental and fs groups. With no
// image to take a default user from, an unset runAsUser means the kubelet's
// own user, and runAsNonRoot without runAsUser is refused like a root image.
func containerIdentity(pod *v1.Pod, c *v1.Container, selfUID int) (identity, error) {
	var runAsUser, runAsGroup *int64
	var runAsNonRoot *bool
	if psc := pod.Spec.SecurityContext; psc != nil {
		runAsUser, runAsGroup, runAsNonRoot = psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			runAsUser = csc.RunAsUser
		}
		if csc.RunAsGroup != nil {
			runAsGroup = csc.RunAsGroup
		}
		if csc.RunAsNonRoot != nil {
			runAsNonRoot = csc.RunAsNonRoot
		}
	}
	if runAsNonRoot != nil && *runAsNonRoot {
		if runAsUser == nil && selfUID == 0 {
			return identity{}, fmt.Errorf("container has runAsNonRoot and no runAsUser: the test kubelet would run it as root (set runAsUser)")
		}
		if runAsUser != nil && *runAsUser == 0 {
			return identity{}, fmt.Errorf("container's runAsUser breaks non-root policy (pod: %s, container: %s)", pod.Name, c.Name)
		}
	}
	if runAsUser == nil && runAsGroup == nil {
		home := "/"
		if u, err := user.LookupId(strconv.Itoa(selfUID)); err == nil && u.HomeDir != "" {
			home = u.HomeDir
		}
		return identity{home: home}, nil
	}
	id := identity{set: true, home: "/"}
	uid := int64(selfUID)
	if runAsUser != nil {
		uid = *runAsUser
	}
	id.uid = uint32(uid)
	// As with an image that has no USER group: the user's primary group if
	// the host knows the user, else group 0.
	if u, err := user.LookupId(strconv.FormatInt(uid, 10)); err == nil {
		if g, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			id.gid = uint32(g)
		}
		if u.HomeDir != "" {
			id.home = u.HomeDir
		}
	}
	if runAsGroup != nil {
		id.gid = uint32(*runAsGroup)
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		for _, g := range psc.SupplementalGroups {
			id.groups = append(id.groups, uint32(g))
		}
		if psc.FSGroup != nil {
			id.groups = append(id.groups, uint32(*psc.FSGroup))
		}
	}
	return id, nil
}

// lookPath finds a command the way a container runtime does: in the
// container's PATH, not the kubelet's.
func lookPath(file, path string, isExec func(string) bool) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in $PATH (%s)", file, path)
}
