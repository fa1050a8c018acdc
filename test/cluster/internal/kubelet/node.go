package kubelet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

const (
	// nodeLeaseNamespace is where kubelets keep their heartbeat Leases.
	nodeLeaseNamespace = "kube-node-lease"
	// leaseDuration matches the kubelet default; the node lifecycle
	// controller judges node health by renewals within its grace period.
	leaseDuration = 40 * time.Second
	// heartbeatPeriod is a quarter of the lease, as the kubelet renews.
	heartbeatPeriod = 10 * time.Second
	// extendWebSocketsToKubelet is the declared feature that makes the API
	// server pass WebSocket port-forward tunnels through to this node.
	extendWebSocketsToKubelet = "ExtendWebSocketsToKubelet"
	// hostIP is the node's only address: everything in the test cluster
	// lives on loopback.
	hostIP = "127.0.0.1"
)

// registerNode creates the Node (or adopts the one a previous run left) and
// publishes its status. It retries because right after /readyz the RBAC
// and Node authorizer caches may not yet admit the node's first request.
func (k *Kubelet) registerNode(ctx context.Context) error {
	k.nodeCaps = k.capacity()
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: k.cfg.NodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": k.cfg.NodeName,
				"kubernetes.io/os":       runtime.GOOS,
				"kubernetes.io/arch":     runtime.GOARCH,
			},
		},
	}
	k.fillNodeStatus(node)
	var lastErr error
	for attempt := 0; ; attempt++ {
		created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		switch {
		case err == nil:
			k.nodeUID = created.UID
		case apierrors.IsAlreadyExists(err):
			existing, gerr := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
			if gerr != nil {
				err = gerr
				break
			}
			k.nodeUID = existing.UID
			err = nil
		}
		if err == nil {
			break
		}
		lastErr = err
		if attempt%10 == 0 {
			k.log.Printf("register node: %v (retrying)", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("register node: %w", lastErr)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := k.updateNodeStatus(ctx); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	k.log.Printf("registered node %s (kubelet port %d, websocket tunnel declared: %v)",
		k.cfg.NodeName, k.port, k.cfg.DeclareWebSocketTunnel)
	return nil
}

// heartbeat renews the node Lease and refreshes the Ready condition; without
// both the node lifecycle controller would taint the node and evict its pods.
func (k *Kubelet) heartbeat(ctx context.Context) {
	t := time.NewTicker(heartbeatPeriod)
	defer t.Stop()
	for {
		if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
			k.log.Printf("renew lease: %v", err)
		}
		if err := k.updateNodeStatus(ctx); err != nil && ctx.Err() == nil {
			k.log.Printf("node status: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (k *Kubelet) renewLease(ctx context.Context) error {
	leases := k.client.CoordinationV1().Leases(nodeLeaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(k.cfg.NodeName),
		LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
		RenewTime:            &now,
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name:      k.cfg.NodeName,
					Namespace: nodeLeaseNamespace,
					// Owned by the Node, as the kubelet does, so deleting the
					// Node garbage-collects its Lease.
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "v1", Kind: "Node", Name: k.cfg.NodeName, UID: k.nodeUID,
					}},
				},
				Spec: spec,
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		lease.Spec.HolderIdentity = spec.HolderIdentity
		lease.Spec.LeaseDurationSeconds = spec.LeaseDurationSeconds
		lease.Spec.RenewTime = spec.RenewTime
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	})
}

func (k *Kubelet) updateNodeStatus(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		k.fillNodeStatus(node)
		_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

// fillNodeStatus writes everything the API server and the controllers read
// from a Node: the address and kubelet port the API server proxies to, the
// declared features, capacity for the scheduler, and fresh conditions.
func (k *Kubelet) fillNodeStatus(node *v1.Node) {
	now := metav1.Now()
	st := &node.Status
	st.Addresses = []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: hostIP},
		{Type: v1.NodeHostName, Address: k.cfg.NodeName},
	}
	st.DaemonEndpoints.KubeletEndpoint.Port = int32(k.port)
	st.Capacity = k.nodeCaps.DeepCopy()
	st.Allocatable = k.nodeCaps.DeepCopy()
	st.NodeInfo = nodeInfo()
	st.Phase = ""
	if k.cfg.DeclareWebSocketTunnel {
		st.DeclaredFeatures = []string{extendWebSocketsToKubelet}
	} else {
		st.DeclaredFeatures = nil
	}
	want := []v1.NodeCondition{
		{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: v1.NodePIDPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: "test kubelet is posting ready status (pods run as host processes)"},
	}
	for i := range want {
		want[i].LastHeartbeatTime = now
		want[i].LastTransitionTime = now
		for _, old := range st.Conditions {
			if old.Type == want[i].Type && old.Status == want[i].Status {
				want[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	st.Conditions = want
}

// capacity reports the host's real CPU and memory: pods are host processes,
// so that is what they share.
func (k *Kubelet) capacity() v1.ResourceList {
	rl := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		v1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(k.cfg.RootDir, &fs) == nil {
		rl[v1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(fs.Blocks)*fs.Bsize, resource.BinarySI)
	}
	return rl
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 1 << 30
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(s.Text(), "MemTotal: %d kB", &kb); err == nil {
			return kb * 1024
		}
	}
	return 1 << 30
}

func nodeInfo() v1.NodeSystemInfo {
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return strings.TrimSpace(string(b))
	}
	osImage := "Linux"
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				osImage = strings.Trim(v, `"`)
			}
		}
	}
	return v1.NodeSystemInfo{
		MachineID:               read("/etc/machine-id"),
		SystemUUID:              read("/etc/machine-id"),
		BootID:                  read("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           read("/proc/sys/kernel/osrelease"),
		OSImage:                 osImage,
		ContainerRuntimeVersion: "testkubelet://" + Version,
		KubeletVersion:          Version,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
	}
}
