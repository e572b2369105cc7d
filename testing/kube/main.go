// Command lifeboat-kube runs one real Kubernetes control plane on loopback for
// lifeboat's tests: embedded etcd, kube-apiserver, kube-controller-manager and a
// minimal node agent, all from Kubernetes' own Go modules, in one process.
//
// It writes an admin kubeconfig to DIR/NAME.kubeconfig once the cluster is ready
// (RBAC bootstrapped, the default ServiceAccount created, the node Ready) and
// serves until SIGINT or SIGTERM, then stops every component and removes its
// state. The API server audits the metadata of every request to
// DIR/NAME.state/audit.log. scripts/kube-up.sh starts one of these per named cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	name := flag.String("name", "", "cluster name: the kubeconfig is DIR/NAME.kubeconfig")
	dir := flag.String("dir", ".", "directory for the kubeconfig and the cluster's state (DIR/NAME.state)")
	flag.Parse()
	if *name == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: lifeboat-kube --name NAME [--dir DIR]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *name, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "lifeboat-kube %s: %v\n", *name, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name, dir string) error {
	started := time.Now()
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	state := filepath.Join(absDir, name+".state")
	kubeconfigPath := filepath.Join(absDir, name+".kubeconfig")
	// A cluster always starts empty: state from an earlier run is not reused.
	_ = os.Remove(kubeconfigPath)
	if err := os.RemoveAll(state); err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(state) }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	etcd, err := startEtcd(state)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	creds, err := newCredentials(state)
	if err != nil {
		return err
	}
	apiDone := make(chan error, 1)
	api, err := startAPIServer(ctx, state, etcd.URL, creds, apiDone)
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	admin, err := api.adminKubeconfig(name, creds.adminToken)
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, admin, apiDone); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	// The controller manager reads its kubeconfig from a file, like the real binary.
	internal := filepath.Join(state, "admin.kubeconfig")
	if err := writeKubeconfig(admin, name, internal); err != nil {
		return err
	}
	kcmDone := make(chan error, 1)
	if err := startControllerManager(ctx, internal, api.caFile, kcmDone); err != nil {
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- runNodeAgent(ctx, admin, "node-"+name) }()

	if err := waitClusterReady(ctx, admin, "node-"+name); err != nil {
		return err
	}
	if err := writeKubeconfig(admin, name, kubeconfigPath); err != nil {
		return err
	}
	defer func() { _ = os.Remove(kubeconfigPath) }()
	fmt.Printf("cluster %s ready at %s in %.1fs, RSS %d MiB, kubeconfig %s\n",
		name, admin.Host, time.Since(started).Seconds(), rssMiB(), kubeconfigPath)

	var failure error
	select {
	case <-ctx.Done():
	case err := <-apiDone:
		failure = fmt.Errorf("kube-apiserver stopped: %w", err)
	case err := <-kcmDone:
		failure = fmt.Errorf("kube-controller-manager stopped: %w", err)
	case err := <-nodeDone:
		failure = fmt.Errorf("node agent stopped: %w", err)
	}
	cancel()
	// The API server drains its requests and closes its storage before etcd stops.
	select {
	case <-apiDone:
	case <-time.After(30 * time.Second):
		failure = errors.Join(failure, errors.New("kube-apiserver did not stop within 30s"))
	}
	return failure
}

// rssMiB is the process's resident memory, read from /proc (Linux only; 0 elsewhere).
func rssMiB() int {
	if runtime.GOOS != "linux" {
		return 0
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var kb int
	for _, line := range strings.Split(string(data), "\n") {
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}
