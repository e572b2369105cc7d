package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// credentials are what the API server trusts: a static admin token (group
// system:masters) for the kubeconfig, and the key that signs ServiceAccount tokens.
type credentials struct {
	adminToken string
	tokenFile  string
	saKeyFile  string
}

func newCredentials(state string) (*credentials, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	c := &credentials{
		adminToken: hex.EncodeToString(raw),
		tokenFile:  filepath.Join(state, "tokens.csv"),
		saKeyFile:  filepath.Join(state, "service-account.key"),
	}
	line := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", c.adminToken)
	if err := os.WriteFile(c.tokenFile, []byte(line), 0o600); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pem, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.saKeyFile, pem, 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

// auditPolicy records every request's metadata (who, verb, resource, response code), so
// tests can count what a client really did, e.g. how often a Job was created.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:apiserver"]
  - level: Metadata
`

type apiServer struct {
	port   int
	caFile string
}

// startAPIServer configures kube-apiserver through its own command-line flags, the
// way an operator would run it, and serves it on a loopback port until ctx ends.
// Authorization is Node,RBAC; admission is the default plugin chain.
func startAPIServer(ctx context.Context, state, etcdURL string, creds *credentials, done chan<- error) (*apiServer, error) {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, set := range s.Flags().FlagSets {
		fs.AddFlagSet(set)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := listener.Addr().(*net.TCPAddr).Port
	s.SecureServing.Listener = listener
	s.SecureServing.BindPort = port
	s.SecureServing.ExternalAddress = net.ParseIP("127.0.0.1")
	certDir := filepath.Join(state, "pki")
	policy := filepath.Join(state, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	err = fs.Parse([]string{
		"--etcd-servers=" + etcdURL,
		"--cert-dir=" + certDir,
		"--authorization-mode=Node,RBAC",
		"--token-auth-file=" + creds.tokenFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + creds.saKeyFile,
		"--service-account-signing-key-file=" + creds.saKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// The only address is loopback: there is no kubernetes Service endpoint to keep.
		"--endpoint-reconciler-type=none",
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + filepath.Join(state, "audit.log"),
		// Written as requests complete, so a reader sees every finished request.
		"--audit-log-mode=blocking",
	})
	if err != nil {
		return nil, err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, fmt.Errorf("invalid options: %v", errs)
	}
	go func() { done <- app.Run(ctx, completed) }()
	return &apiServer{port: port, caFile: filepath.Join(certDir, "apiserver.crt")}, nil
}

// adminKubeconfig waits for the self-signed serving certificate the API server
// writes at start-up and returns a client configuration that trusts it.
func (a *apiServer) adminKubeconfig(name, token string) (*rest.Config, error) {
	var ca []byte
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 60*time.Second, true,
		func(context.Context) (bool, error) {
			data, err := os.ReadFile(a.caFile)
			if err != nil {
				return false, nil
			}
			ca = data
			return true, nil
		})
	if err != nil {
		return nil, fmt.Errorf("serving certificate %s: %w", a.caFile, err)
	}
	return &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", a.port),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		UserAgent:       "lifeboat-kube/" + name,
	}, nil
}

func waitHealthy(ctx context.Context, cfg *rest.Config, done <-chan error) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true,
		func(ctx context.Context) (bool, error) {
			select {
			case err := <-done:
				return false, fmt.Errorf("stopped during start-up: %w", err)
			default:
			}
			status := 0
			client.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
			return status == 200, nil
		})
}

// writeKubeconfig writes cfg as a kubeconfig file, atomically: a reader sees
// either no file or the whole file.
func writeKubeconfig(cfg *rest.Config, name, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin", Namespace: "default"}
	kc.CurrentContext = name
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*kc, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
