// Command testcluster builds, starts and stops the devmtls test cluster
// from the shell, for `make cluster-up` and for tests outside this module
// (which cannot import it):
//
//	testcluster build
//	testcluster up --dir DIR [--websocket-tunnel] [--node-name NAME]
//	testcluster down --dir DIR
//	testcluster status --dir DIR
//	testcluster stats --dir DIR
//	testcluster kubeconfig --dir DIR --user NAME [--group GROUP]...
//
// `up` starts every component detached, writes DIR/kubeconfig,
// DIR/state.json and DIR/pids, prints `export KUBECONFIG=DIR/kubeconfig` on
// stdout (progress goes to stderr) and returns once pods can be scheduled.
// If the start fails it stops what it started. `down` stops every process
// recorded in DIR by PID and succeeds when nothing is running. `stats`
// prints, as JSON, how many port-forwards reached the kubelet over SPDY,
// WebSocket and tunnelled WebSocket (which path the API server took).
// `kubeconfig` prints the path of a new kubeconfig for a user with no RBAC
// grants, for "forbidden" tests.
//
// Run it from test/cluster (`go run ./cmd/testcluster ...`): building the
// control plane needs this module's go.mod.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	cluster "github.com/devmtls/devmtls/test/cluster"
)

const usage = `usage:
  testcluster build
  testcluster up --dir DIR [--websocket-tunnel] [--node-name NAME]
  testcluster down --dir DIR
  testcluster status --dir DIR
  testcluster stats --dir DIR
  testcluster kubeconfig --dir DIR --user NAME [--group GROUP]...
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command, separate from main so it returns instead of
// exiting: 0 ok, 1 failure, 2 usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "testcluster: "+format+"\n", a...)
	}
	fs := flag.NewFlagSet("testcluster "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "cluster directory (required)")
	var err error
	switch args[0] {
	case "build":
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		var b *cluster.Binaries
		b, err = cluster.EnsureBinaries(ctx, cluster.BuildOptions{Logf: logf})
		if err == nil {
			fmt.Fprintf(stdout, "kube-apiserver          %s\nkube-controller-manager %s\nkube-scheduler          %s\ntestkubelet             %s\netcd                    %s\n",
				b.APIServer, b.ControllerManager, b.Scheduler, b.Kubelet, b.Etcd)
		}
	case "up":
		tunnel := fs.Bool("websocket-tunnel", false, "declare ExtendWebSocketsToKubelet on the node, so the API server tunnels WebSocket port-forwards to the kubelet")
		node := fs.String("node-name", "", "node name (default "+cluster.DefaultNodeName+")")
		if !parse(fs, args[1:], dir) {
			return 2
		}
		err = up(ctx, *dir, *tunnel, *node, stdout, logf)
	case "down":
		if !parse(fs, args[1:], dir) {
			return 2
		}
		err = withLock(ctx, *dir, logf, func() error { return cluster.StopDir(*dir) })
		if err == nil {
			logf("stopped the cluster in %s (if one was running)", *dir)
		}
	case "status":
		if !parse(fs, args[1:], dir) {
			return 2
		}
		err = status(*dir, stdout)
	case "stats":
		if !parse(fs, args[1:], dir) {
			return 2
		}
		var c *cluster.Cluster
		if c, err = cluster.Attach(*dir); err == nil {
			var st cluster.PortForwardStats
			if st, err = c.KubeletPortForwardStats(ctx); err == nil {
				err = json.NewEncoder(stdout).Encode(st)
			}
		}
	case "kubeconfig":
		user := fs.String("user", "", "user name (client certificate common name)")
		var groups multiFlag
		fs.Var(&groups, "group", "group (certificate organization); repeatable")
		if !parse(fs, args[1:], dir) {
			return 2
		}
		if *user == "" {
			fmt.Fprintln(stderr, "testcluster kubeconfig: --user is required")
			return 2
		}
		var c *cluster.Cluster
		if c, err = cluster.Attach(*dir); err == nil {
			var path string
			if path, err = c.UserKubeconfig(*user, groups...); err == nil {
				fmt.Fprintln(stdout, path)
			}
		}
	default:
		fmt.Fprintf(stderr, "testcluster: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "testcluster:", err)
		return 1
	}
	return 0
}

func parse(fs *flag.FlagSet, args []string, dir *string) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if *dir == "" {
		fmt.Fprintf(fs.Output(), "%s: --dir is required\n", fs.Name())
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return false
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		return false
	}
	*dir = abs
	return true
}

// up starts a detached cluster, or reports the one already running in dir.
func up(ctx context.Context, dir string, tunnel bool, node string, stdout io.Writer, logf func(string, ...any)) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return withLock(ctx, dir, logf, func() error {
		if c, err := cluster.Attach(dir); err == nil {
			if c.Running() {
				if c.WebSocketTunnel() != tunnel {
					return fmt.Errorf("a cluster with --websocket-tunnel=%v is already running in %s; run `testcluster down --dir %s` first", c.WebSocketTunnel(), dir, dir)
				}
				logf("cluster already running in %s", dir)
				fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", c.Kubeconfig())
				return nil
			}
			logf("cleaning up a cluster that is no longer fully running in %s", dir)
			if err := c.Stop(); err != nil {
				return err
			}
		}
		start := time.Now()
		c, err := cluster.Start(ctx, cluster.Options{
			Dir:                    dir,
			DeclareWebSocketTunnel: tunnel,
			NodeName:               node,
			Detach:                 true,
			Logf:                   logf,
		})
		if err != nil {
			return err
		}
		t := c.Timings()
		logf("cluster up in %s (API server ready %s, node ready %s after the first process started); logs in %s",
			time.Since(start).Round(time.Millisecond), t.Readyz.Round(time.Millisecond), t.NodeReady.Round(time.Millisecond), filepath.Join(dir, "logs"))
		fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", c.Kubeconfig())
		return nil
	})
}

func status(dir string, stdout io.Writer) error {
	c, err := cluster.Attach(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no cluster in %s", dir)
	}
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "server     %s\nkubeconfig %s\nnode       %s (websocket tunnel declared: %v)\n", c.Server(), c.Kubeconfig(), c.NodeName(), c.WebSocketTunnel())
	fmt.Fprint(stdout, string(b))
	if !c.Running() {
		return fmt.Errorf("not every process of the cluster in %s is running", dir)
	}
	return nil
}

// withLock serializes up and down on one directory.
func withLock(ctx context.Context, dir string, logf func(string, ...any), f func() error) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return f()
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".testcluster.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	for said := false; ; said = true {
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			break
		}
		if !said {
			logf("waiting for another testcluster working on %s", dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return f()
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
