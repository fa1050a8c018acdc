package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// shutdownGrace caps how long a stopping kubelet waits for pod processes,
// so `testcluster down` and Cluster.Stop stay quick.
const shutdownGrace = 10 * time.Second

// podWorker owns one pod on this node from first sight to finalized
// deletion: it allocates the pod IP, runs the containers, publishes status
// and, when the pod is deleted, stops the processes and removes the pod.
type podWorker struct {
	k      *Kubelet
	uid    types.UID
	logDir string

	mu          sync.Mutex
	pod         *v1.Pod
	gone        bool // the pod no longer exists in the API server
	stopping    bool // kubelet shutdown
	ip          string
	startTime   *metav1.Time
	initialized bool
	terminating bool
	inits       []*container
	mains       []*container

	wake  chan struct{}
	dirty chan struct{}
}

func newPodWorker(k *Kubelet, pod *v1.Pod) *podWorker {
	w := &podWorker{
		k:      k,
		uid:    pod.UID,
		pod:    pod,
		logDir: filepath.Join(k.cfg.RootDir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		wake:   make(chan struct{}, 1),
		dirty:  make(chan struct{}, 1),
	}
	for i := range pod.Spec.InitContainers {
		w.inits = append(w.inits, newContainer(w, pod.Spec.InitContainers[i], true))
	}
	for i := range pod.Spec.Containers {
		w.mains = append(w.mains, newContainer(w, pod.Spec.Containers[i], false))
	}
	return w
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *podWorker) update(pod *v1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	signal(w.wake)
}

func (w *podWorker) removed() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	signal(w.wake)
}

func (w *podWorker) shutdown() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	signal(w.wake)
}

func (w *podWorker) currentPod() *v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) podIP() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ip
}

func (w *podWorker) markDirty() { signal(w.dirty) }

func (w *podWorker) containerByName(name string) *container {
	for _, c := range append(append([]*container{}, w.mains...), w.inits...) {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// run drives the pod to completion. It returns once the pod's processes are
// gone and, unless the kubelet itself is stopping, the deletion finalized.
func (w *podWorker) run(ctx context.Context) {
	pod := w.currentPod()
	k := w.k
	ip := hostIP
	if !pod.Spec.HostNetwork {
		var err error
		if ip, err = k.ipam.allocate(); err != nil {
			k.log.Printf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
			return
		}
		defer k.ipam.free(ip)
	}
	if err := os.MkdirAll(w.logDir, 0o700); err != nil {
		k.log.Printf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	now := metav1.Now()
	w.mu.Lock()
	w.ip = ip
	w.startTime = &now
	w.mu.Unlock()
	k.log.Printf("pod %s/%s (%s): ip %s", pod.Namespace, pod.Name, pod.UID, ip)

	statusCtx, stopStatus := context.WithCancel(ctx)
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		w.statusLoop(statusCtx)
	}()
	w.markDirty()

	runCtx, stopRun := context.WithCancel(ctx)
	containersDone := make(chan struct{})
	go func() {
		defer close(containersDone)
		w.runContainers(runCtx)
	}()

	// Wait for a reason to stop: deletion, removal or kubelet shutdown.
	// A pod whose containers all finished for good stays until deleted.
	var graceSecs int64
	for {
		w.mu.Lock()
		p, gone, stopping := w.pod, w.gone, w.stopping
		w.mu.Unlock()
		if gone || stopping || p.DeletionTimestamp != nil {
			graceSecs = terminationGrace(p)
			if stopping && graceSecs > int64(shutdownGrace/time.Second) {
				graceSecs = int64(shutdownGrace / time.Second)
			}
			break
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			w.shutdown()
		}
	}

	w.mu.Lock()
	w.terminating = true
	w.mu.Unlock()
	w.markDirty()
	w.stopContainers(time.Duration(graceSecs) * time.Second)
	stopRun()
	<-containersDone

	stopStatus()
	<-statusDone

	w.mu.Lock()
	gone, stopping := w.gone, w.stopping
	w.mu.Unlock()
	if gone || stopping {
		return
	}
	// Publish the terminated containers, then remove the pod with grace 0
	// and the UID as precondition, as the kubelet's status manager does,
	// so the pod never hangs in Terminating and a new pod that reuses the
	// name is never deleted by mistake.
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.patchStatus(fctx); err != nil && !apierrors.IsNotFound(err) {
		k.log.Printf("pod %s/%s: final status: %v", pod.Namespace, pod.Name, err)
	}
	k.finalizeDeletion(fctx, w.currentPod())
}

// terminationGrace is how long the processes get between SIGTERM and
// SIGKILL: the deletion's grace period if there is one, else the pod's.
func terminationGrace(p *v1.Pod) int64 {
	if p.DeletionGracePeriodSeconds != nil {
		return *p.DeletionGracePeriodSeconds
	}
	if p.Spec.TerminationGracePeriodSeconds != nil {
		return *p.Spec.TerminationGracePeriodSeconds
	}
	return v1.DefaultTerminationGracePeriodSeconds
}

// finalizeDeletion removes a pod whose processes are gone.
func (k *Kubelet) finalizeDeletion(ctx context.Context, pod *v1.Pod) {
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		k.log.Printf("pod %s/%s: finalize deletion: %v", pod.Namespace, pod.Name, err)
		return
	}
	k.log.Printf("pod %s/%s (%s): deleted", pod.Namespace, pod.Name, pod.UID)
}

// runContainers runs the init containers one after another to success,
// then all regular containers side by side.
func (w *podWorker) runContainers(ctx context.Context) {
	pod := w.currentPod()
	for _, c := range w.inits {
		if !c.loop(ctx, pod.Spec.RestartPolicy) {
			return
		}
	}
	w.mu.Lock()
	w.initialized = true
	w.mu.Unlock()
	w.markDirty()
	var wg sync.WaitGroup
	for _, c := range w.mains {
		wg.Go(func() { c.loop(ctx, pod.Spec.RestartPolicy) })
	}
	wg.Wait()
}

// stopContainers stops every container, in parallel, with the given grace.
func (w *podWorker) stopContainers(grace time.Duration) {
	var wg sync.WaitGroup
	for _, c := range append(append([]*container{}, w.inits...), w.mains...) {
		wg.Go(func() { c.stop(grace) })
	}
	// A pod removed from the API server during the grace period (a forced
	// delete) must not wait any longer.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-w.wake:
			w.mu.Lock()
			gone := w.gone
			w.mu.Unlock()
			if gone {
				for _, c := range append(append([]*container{}, w.inits...), w.mains...) {
					c.killNow()
				}
			}
		}
	}
}

// statusLoop publishes the pod status whenever it changes, retrying on
// errors until it gets through.
func (w *podWorker) statusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.dirty:
		}
		for attempt := 0; ; attempt++ {
			err := w.patchStatus(ctx)
			if err == nil || ctx.Err() != nil || apierrors.IsNotFound(err) {
				break
			}
			if attempt%10 == 0 {
				p := w.currentPod()
				w.k.log.Printf("pod %s/%s: status: %v", p.Namespace, p.Name, err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// patchStatus replaces the status fields the kubelet owns with a JSON merge
// patch. The UID in the patch makes it fail rather than touch a different
// pod of the same name. Lists (conditions, container statuses) are
// replaced whole, so PodScheduled is carried over from the current object.
func (w *podWorker) patchStatus(ctx context.Context) error {
	pod := w.currentPod()
	status := w.buildStatus()
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   status,
	})
	if err != nil {
		return err
	}
	_, err = w.k.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	return err
}

// buildStatus computes the pod status from the containers' states the way
// the kubelet's generateAPIPodStatus/getPhase do.
func (w *podWorker) buildStatus() v1.PodStatus {
	w.mu.Lock()
	pod, ip, start, initialized, terminating := w.pod, w.ip, w.startTime, w.initialized, w.terminating
	w.mu.Unlock()

	st := v1.PodStatus{
		HostIP:             hostIP,
		HostIPs:            []v1.HostIP{{IP: hostIP}},
		StartTime:          start,
		QOSClass:           pod.Status.QOSClass,
		ObservedGeneration: pod.Generation,
	}
	if ip != "" {
		st.PodIP = ip
		st.PodIPs = []v1.PodIP{{IP: ip}}
	}
	for _, c := range w.inits {
		st.InitContainerStatuses = append(st.InitContainerStatuses, c.status())
	}
	allReady := len(w.mains) > 0
	for _, c := range w.mains {
		cs := c.status()
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			allReady = false
		}
	}
	st.Phase = podPhase(pod.Spec.RestartPolicy, initialized, terminating, st.InitContainerStatuses, st.ContainerStatuses)
	if st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed || terminating {
		allReady = false
	}

	now := metav1.Now()
	cond := func(t v1.PodConditionType, ok bool, reason string) v1.PodCondition {
		c := v1.PodCondition{Type: t, Status: v1.ConditionFalse, LastTransitionTime: now, ObservedGeneration: pod.Generation}
		if ok {
			c.Status = v1.ConditionTrue
		} else {
			c.Reason = reason
		}
		for _, old := range pod.Status.Conditions {
			if old.Type == t && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	notReadyReason := "ContainersNotReady"
	if st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed {
		notReadyReason = "PodCompleted"
	}
	st.Conditions = []v1.PodCondition{
		cond(v1.PodReadyToStartContainers, ip != "" && !(terminating && st.Phase != v1.PodRunning), ""),
		cond(v1.PodInitialized, initialized, "ContainersNotInitialized"),
		cond(v1.ContainersReady, allReady, notReadyReason),
		cond(v1.PodReady, allReady, notReadyReason),
	}
	for _, old := range pod.Status.Conditions {
		switch old.Type {
		case v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady:
		default:
			st.Conditions = append(st.Conditions, old)
		}
	}
	return st
}

// podPhase mirrors the kubelet's getPhase. A terminating pod whose
// processes have all stopped is terminal even with restartPolicy Always.
func podPhase(policy v1.RestartPolicy, initialized, terminating bool, inits, mains []v1.ContainerStatus) v1.PodPhase {
	if !initialized {
		for _, s := range inits {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 && policy == v1.RestartPolicyNever {
				return v1.PodFailed
			}
		}
		if terminating {
			return v1.PodFailed
		}
		return v1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, s := range mains {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case terminating && running == 0:
		if stopped > 0 && stopped == succeeded {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		switch {
		case policy == v1.RestartPolicyAlways:
			return v1.PodRunning
		case stopped == succeeded:
			return v1.PodSucceeded
		case policy == v1.RestartPolicyNever:
			return v1.PodFailed
		}
		return v1.PodRunning
	}
	return v1.PodPending
}
