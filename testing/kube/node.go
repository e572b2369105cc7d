package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// The node agent stands in for kube-scheduler and a kubelet with no container
// runtime. It binds every unscheduled pod to its node, reports it Running, and
// ends each container the way its command says: a command containing
// `sleep N` runs for N seconds (at most maxRun), and one containing `exit N`
// ends with that exit code (the last one wins), otherwise with 0. Pods whose
// restartPolicy is Never end Succeeded or Failed; other pods have a failed
// container restarted, as a kubelet would. A pod being deleted is removed once
// its "containers" stop, immediately. Everything else about pods is the real
// API server's and controllers' business.

const (
	maxRun = 10 * time.Minute
	// forever is the run time of a container without a command.
	forever = time.Duration(1<<63 - 1)
	// restartDelay is the least a restarted container runs before it can end again, so a
	// crash-looping container does not turn into a loop of status writes.
	restartDelay = time.Second
)

var (
	exitPattern  = regexp.MustCompile(`\bexit\s+(\d+)`)
	sleepPattern = regexp.MustCompile(`\bsleep\s+(\d+(?:\.\d+)?)`)
)

// containerScript is what a container would run: its command and arguments.
func containerScript(c corev1.Container) string {
	return strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
}

func exitCode(c corev1.Container) int32 {
	matches := exitPattern.FindAllStringSubmatch(containerScript(c), -1)
	if len(matches) == 0 {
		return 0
	}
	code, err := strconv.ParseInt(matches[len(matches)-1][1], 10, 32)
	if err != nil || code > 255 {
		return 255
	}
	return int32(code)
}

// runTime is how long the container runs: forever (until its pod is deleted) when it
// has no command, like a server image; else the command's `sleep N`, else no time.
func runTime(c corev1.Container) time.Duration {
	script := containerScript(c)
	if script == "" {
		return forever
	}
	m := sleepPattern.FindStringSubmatch(script)
	if m == nil {
		return 0
	}
	secs, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0
	}
	return min(time.Duration(secs*float64(time.Second)), maxRun)
}

type nodeAgent struct {
	client kubernetes.Interface
	node   string
	pods   corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[string]
	nextIP atomic.Uint32
}

func runNodeAgent(ctx context.Context, cfg *rest.Config, node string) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 200, 400
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := registerNode(ctx, client, node); err != nil {
		return fmt.Errorf("registering node %s: %w", node, err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Core().V1().Pods()
	a := &nodeAgent{
		client: client,
		node:   node,
		pods:   informer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		a.queue.ShutDown()
	}()
	for a.processNext(ctx) {
	}
	return ctx.Err()
}

func registerNode(ctx context.Context, client kubernetes.Interface, name string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	node, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "lifeboat-kube node agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "lifeboat-kube", OperatingSystem: "linux", Architecture: "amd64"},
	}
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

func (a *nodeAgent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	requeueAfter, err := a.sync(ctx, key)
	switch {
	case err != nil && ctx.Err() == nil:
		a.queue.AddRateLimited(key)
	case requeueAfter > 0:
		a.queue.Forget(key)
		a.queue.AddAfter(key, requeueAfter)
	default:
		a.queue.Forget(key)
	}
	return true
}

// sync moves one pod one step along its life; it returns when to look again.
func (a *nodeAgent) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	switch {
	case pod.DeletionTimestamp != nil:
		if pod.Spec.NodeName == "" || pod.Spec.NodeName == a.node {
			return 0, a.remove(ctx, pod)
		}
		return 0, nil
	case pod.Spec.NodeName == "":
		return 0, a.bind(ctx, pod)
	case pod.Spec.NodeName != a.node:
		return 0, nil
	case pod.Status.Phase == corev1.PodPending || pod.Status.Phase == "":
		return a.start(ctx, pod)
	case pod.Status.Phase == corev1.PodRunning:
		return a.advance(ctx, pod)
	}
	return 0, nil
}

func (a *nodeAgent) bind(ctx context.Context, pod *corev1.Pod) error {
	err := a.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: a.node},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // already bound, or gone
	}
	return err
}

func (a *nodeAgent) remove(ctx context.Context, pod *corev1.Pod) error {
	zero := int64(0)
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func (a *nodeAgent) start(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	now := metav1.Now()
	pod = pod.DeepCopy()
	ip := a.nextIP.Add(1)
	pod.Status.Phase = corev1.PodRunning
	pod.Status.HostIP = "127.0.0.1"
	pod.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	pod.Status.PodIP = fmt.Sprintf("10.244.%d.%d", (ip/250)%250, ip%250+1)
	pod.Status.PodIPs = []corev1.PodIP{{IP: pod.Status.PodIP}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = podConditions(now, corev1.ConditionTrue)
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "lifeboat-kube://" + c.Image, Ready: true, Started: ptr(true),
			ContainerID: fmt.Sprintf("lifeboat-kube://%s-%s", pod.UID, c.Name),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, err
	}
	return a.nextDeadline(pod), nil
}

// nextDeadline is how long until the earliest running container ends.
func (a *nodeAgent) nextDeadline(pod *corev1.Pod) time.Duration {
	next := time.Duration(-1)
	for i, s := range pod.Status.ContainerStatuses {
		if s.State.Running == nil || i >= len(pod.Spec.Containers) {
			continue
		}
		left := max(time.Until(endsAt(s, pod.Spec.Containers[i])), time.Millisecond)
		if next < 0 || left < next {
			next = left
		}
	}
	return max(next, 0)
}

// advance ends the containers whose time has come; once none runs, the pod's phase follows.
func (a *nodeAgent) advance(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	pod = pod.DeepCopy()
	now := metav1.Now()
	changed := false
	for i := range pod.Status.ContainerStatuses {
		s := &pod.Status.ContainerStatuses[i]
		if s.State.Running == nil || i >= len(pod.Spec.Containers) {
			continue
		}
		c := pod.Spec.Containers[i]
		if now.Time.Before(endsAt(*s, c)) {
			continue
		}
		changed = true
		code := exitCode(c)
		reason := "Completed"
		if code != 0 {
			reason = "Error"
		}
		ended := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: s.State.Running.StartedAt, FinishedAt: now,
			ContainerID: s.ContainerID,
		}}
		restart := pod.Spec.RestartPolicy == corev1.RestartPolicyAlways ||
			(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && code != 0)
		if restart {
			s.LastTerminationState = ended
			s.RestartCount++
			s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		} else {
			s.State = ended
			s.Ready = false
			s.Started = ptr(false)
		}
	}
	if !changed {
		return a.nextDeadline(pod), nil
	}
	running, failed := false, false
	for _, s := range pod.Status.ContainerStatuses {
		running = running || s.State.Running != nil
		failed = failed || (s.State.Terminated != nil && s.State.Terminated.ExitCode != 0)
	}
	if !running {
		pod.Status.Phase = corev1.PodSucceeded
		if failed {
			pod.Status.Phase = corev1.PodFailed
		}
		pod.Status.Conditions = podConditions(now, corev1.ConditionFalse)
	}
	if _, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, err
	}
	if running {
		return a.nextDeadline(pod), nil
	}
	return 0, nil
}

// endsAt is when a running container ends; far in the future for one that runs forever.
func endsAt(s corev1.ContainerStatus, c corev1.Container) time.Time {
	run := runTime(c)
	if run == forever {
		return time.Now().Add(24 * time.Hour)
	}
	if s.RestartCount > 0 {
		run = max(run, restartDelay)
	}
	return s.State.Running.StartedAt.Add(run)
}

func podConditions(now metav1.Time, ready corev1.ConditionStatus) []corev1.PodCondition {
	conditions := []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
	}
	if ready == corev1.ConditionFalse {
		conditions[2].Reason, conditions[3].Reason = "PodCompleted", "PodCompleted"
	}
	return conditions
}

func ptr[T any](v T) *T { return &v }

// waitClusterReady returns once a client could use the cluster like a
// kubeadm-made one: the node Ready, the default ServiceAccount and the
// cluster's root CA ConfigMap present in the default namespace.
func waitClusterReady(ctx context.Context, cfg *rest.Config, node string) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var missing string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true,
		func(ctx context.Context) (bool, error) {
			if _, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
				missing = "node " + node
				return false, nil
			}
			if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
				missing = "ServiceAccount default/default"
				return false, nil
			}
			if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
				missing = "ConfigMap default/kube-root-ca.crt"
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		return fmt.Errorf("cluster not ready (waiting for %s): %w", missing, err)
	}
	return nil
}
