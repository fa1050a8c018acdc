package cluster_test

import (
	"net"
	"strings"
	"testing"
	"time"
)

// benchSize is moved each way per connection, as in the end-to-end test.
const benchSize = 256 << 20

// BenchmarkPortForward measures plain `kubectl port-forward` through this
// API server against raw loopback TCP to the same echo server, side by
// side: every iteration moves benchSize each way over a direct connection
// to the pod IP and then over the port-forward, and the ratio of the two
// throughputs is reported. Absolute figures depend on what else the shared
// cores do; the ratio, measured in one run, is the figure to compare.
//
//	make bench   (go test -run '^$' -bench PortForward -benchtime 3x)
func BenchmarkPortForward(b *testing.B) {
	echo := buildEcho(b)
	type env struct {
		kubeconfig string
		podIP      string
	}
	setup := func(tunnel bool) env {
		c, _ := startCluster(b, tunnel)
		kc := c.Kubeconfig()
		apply(b, kc, echoManifest(echo, 1))
		kubectl(b, kc, "rollout", "status", "deployment/echo", "--timeout=3m")
		ip := strings.TrimSpace(kubectl(b, kc, "get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[0].status.podIP}"))
		return env{kc, ip}
	}
	tunnel, translated := setup(true), setup(false)

	for _, path := range []struct {
		name string
		env  env
		// kubectl's environment: KUBECTL_PORT_FORWARD_WEBSOCKETS=false
		// makes kubectl use SPDY end to end.
		kubectlEnv []string
	}{
		{"websocket-tunnel-to-kubelet", tunnel, nil},
		{"spdy", tunnel, []string{"KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
		{"websocket-translated-by-apiserver", translated, nil},
	} {
		b.Run(path.name, func(b *testing.B) {
			fwd := portForward(b, path.env.kubeconfig, "deployment/echo", 8080, path.kubectlEnv...)
			raw := net.JoinHostPort(path.env.podIP, "8080")
			var rawTime, fwdTime time.Duration
			for b.Loop() {
				d, err := echoTransfer(raw, benchSize, false)
				if err != nil {
					b.Fatalf("raw loopback: %v", err)
				}
				rawTime += d
				d, err = echoTransfer(fwd, benchSize, false)
				if err != nil {
					b.Fatalf("kubectl port-forward: %v", err)
				}
				fwdTime += d
			}
			n := float64(b.N) * benchSize
			rawMBps, fwdMBps := n/rawTime.Seconds()/1e6, n/fwdTime.Seconds()/1e6
			b.ReportMetric(rawMBps, "raw-MB/s")
			b.ReportMetric(fwdMBps, "kubectl-MB/s")
			b.ReportMetric(fwdMBps/rawMBps, "kubectl/raw")
			b.Logf("%s: raw loopback %.0f MB/s, kubectl port-forward %.0f MB/s, ratio %.3f (each way, %d × 256 MiB)", path.name, rawMBps, fwdMBps, fwdMBps/rawMBps, b.N)
		})
	}
}
