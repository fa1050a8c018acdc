// Command testkubelet is the test cluster's kubelet: it registers a Node,
// runs the pods bound to it as host processes on loopback pod IPs, and
// serves port-forward and logs to the API server. The cluster package
// starts it as a separate process, like every other cluster component, so
// it can be stopped (or killed mid-stream) on its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/devmtls/devmtls/test/cluster/internal/kubelet"
)

func main() {
	var cfg kubelet.Config
	var allowed string
	flag.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig with the node's client certificate (system:node:NAME)")
	flag.StringVar(&cfg.NodeName, "node-name", "", "name of the Node to register")
	flag.StringVar(&cfg.ServingCertFile, "tls-cert-file", "", "kubelet serving certificate")
	flag.StringVar(&cfg.ServingKeyFile, "tls-private-key-file", "", "kubelet serving key")
	flag.StringVar(&cfg.ClientCAFile, "client-ca-file", "", "CA that signs the API server's kubelet client certificate")
	flag.StringVar(&allowed, "allowed-clients", "", "comma-separated client certificate common names allowed to call the kubelet API (empty: any from the client CA)")
	flag.StringVar(&cfg.RootDir, "root-dir", "", "directory for pod logs and state")
	flag.StringVar(&cfg.Address, "address", "127.0.0.1:0", "kubelet API listen address")
	flag.BoolVar(&cfg.DeclareWebSocketTunnel, "declare-websocket-tunnel", false, "declare ExtendWebSocketsToKubelet so the API server tunnels WebSocket port-forwards through")
	flag.StringVar(&cfg.PodNetworkLockDir, "pod-network-lock-dir", "", "directory of the lock files that keep test kubelets' pod networks apart")
	flag.Parse()
	if allowed != "" {
		cfg.AllowedClients = strings.Split(allowed, ",")
	}
	cfg.Logger = log.New(os.Stderr, "testkubelet: ", log.LstdFlags|log.Lmicroseconds)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := kubelet.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "testkubelet:", err)
		os.Exit(1)
	}
}
