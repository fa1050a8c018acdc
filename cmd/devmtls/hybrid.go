package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/hybrid"
)

// forwardsSpec turns the project's x-devmtls.forwards into what the background
// process serves.
func forwardsSpec(p *compose.Project, containerAddress string) (hybrid.Spec, error) {
	spec := hybrid.Spec{ContainerAddress: containerAddress}
	if kc := os.Getenv("KUBECONFIG"); kc != "" {
		// The process may start elsewhere; relative entries are made absolute.
		var parts []string
		for _, part := range filepath.SplitList(kc) {
			abs, err := filepath.Abs(part)
			if err != nil {
				return spec, err
			}
			parts = append(parts, abs)
		}
		spec.Kubeconfig = strings.Join(parts, string(filepath.ListSeparator))
	}
	for _, f := range p.Config.Forwards {
		hf := hybrid.Forward{As: f.As, Target: f.TargetSpec, Namespace: f.Namespace, Context: f.Context,
			Secret: f.Secret, Protocol: f.Protocol, ServerName: f.ServerName}
		for _, port := range f.Ports {
			hf.Ports = append(hf.Ports, hybrid.Port{Listen: port.Listen, Remote: port.Remote})
		}
		spec.Forwards = append(spec.Forwards, hf)
	}
	return spec, nil
}

// startForwards makes the environment's background process serve the
// project's forwards before compose starts the services, and says where each
// is reachable. An unreachable cluster is a warning: the forward retries.
func (o *composeRunOptions) startForwards(ctx context.Context, d *compose.Docker) error {
	addr, err := d.HostGatewayAddress(ctx)
	if err != nil {
		return err
	}
	spec, err := forwardsSpec(o.env.project, addr)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the devmtls binary to run the forwards: %w", err)
	}
	st, started, err := hybrid.Ensure(ctx, o.env.dir, spec, exe)
	if err != nil {
		return fmt.Errorf("x-devmtls.forwards: %w", err)
	}
	verb := "reusing the running forwards"
	if started {
		verb = "forwarding"
	}
	printForwards(o.g.stderr, verb, st)
	return nil
}

func printForwards(w io.Writer, verb string, st *hybrid.State) {
	for _, f := range st.Forwards {
		where := ""
		if len(f.Containers) > 0 {
			_, port, _ := strings.Cut(f.Containers[0], ":")
			where = fmt.Sprintf(" for containers at %s:%s", f.As, port)
		}
		if len(f.Host) > 0 {
			where += fmt.Sprintf(", for host processes at %s (%s)", f.Host[0], hybrid.AddrVar(f.As, 0))
		}
		fmt.Fprintf(w, "devmtls: %s %s -> %s in namespace %s%s\n", verb, f.As, f.Target, f.Namespace, where)
		if f.LastError != "" {
			fmt.Fprintf(w, "devmtls: warning: forward %s: %s (it keeps retrying; devmtls status shows how it is doing)\n", f.As, f.LastError)
		}
	}
}

// stopForwards ends the environment's background process, if one runs.
func (o *composeRunOptions) stopForwards(ctx context.Context) error {
	stopped, err := hybrid.Stop(ctx, o.env.dir)
	if err != nil {
		return err
	}
	if stopped {
		fmt.Fprintln(o.g.stderr, "devmtls: stopped the forwards")
	}
	return nil
}

// detached reports whether compose up's arguments ask for the background.
func detached(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		// --wait (and --wait-timeout) imply --detach in compose.
		if a == "-d" || a == "--detach" || a == "--wait" || strings.HasPrefix(a, "--wait-timeout") {
			return true
		}
		// A cluster of short boolean flags such as -dV.
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && strings.ContainsRune(a[1:], 'd') && !strings.ContainsAny(a[1:], "t=") {
			return true
		}
	}
	return false
}
