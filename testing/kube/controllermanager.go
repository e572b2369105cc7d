package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
)

// controllers are the kube-controller-manager loops lifeboat's Jobs and
// namespaces depend on. Without a scheduler or kubelet, the node agent stands in
// for both (node.go).
var controllers = []string{
	names.JobController,
	names.GarbageCollectorController,
	names.NamespaceController,
	names.ServiceAccountController,
	names.TTLAfterFinishedController,
	names.RootCACertificatePublisherController,
	// Aggregated ClusterRoles (lifeboat-step-executor is one) are filled in by this one.
	names.ClusterRoleAggregationController,
	// The chart's Deployment (crates/cli/tests/chart_install.rs): its ReplicaSet and pods.
	names.DeploymentController,
	names.ReplicaSetController,
}

// startControllerManager runs kube-controller-manager, configured through its
// own flags, until ctx ends.
func startControllerManager(ctx context.Context, kubeconfig, caFile string, done chan<- error) error {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	all, disabled, aliases := kcm.KnownControllers(), kcm.ControllersDisabledByDefault(), kcm.ControllerAliases()
	named := s.Flags(all, disabled, aliases)
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, set := range named.FlagSets {
		fs.AddFlagSet(set)
	}
	err = fs.Parse([]string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(controllers, ","),
		"--root-ca-file=" + caFile,
		"--leader-elect=false",
		// No serving endpoint: nothing scrapes it, and it would need its own certificates.
		"--secure-port=0",
	})
	if err != nil {
		return err
	}
	s.ParsedFlags = &named
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	config, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return fmt.Errorf("options: %w", err)
	}
	go func() { done <- kcm.Run(ctx, config.Complete()) }()
	return nil
}
