package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/hybrid"
	"github.com/devmtls/devmtls/hybrid/relay"
)

// forwardsSpec turns the project's x-devmtls.forwards, placed, into what the
// background process serves; relayed when relay containers carry them to the
// containers (devmtls up), not for devmtls exec.
func forwardsSpec(p *compose.Project, pl hybrid.Placement, relayed bool) (hybrid.Spec, error) {
	spec := hybrid.Spec{Forwards: p.Config.Forwards, HostPorts: pl.Ports, Relayed: relayed}
	if relayed && pl.Route != nil {
		spec.Gateway = pl.Route.Listen
	}
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
	return spec, nil
}

// placeForwards decides where the project's forwards are reached and the
// relay services that carry them to the containers. With build (the commands
// that create containers, with Docker), it asks the engine how its
// containers reach this machine, makes the relay image when it is missing,
// and records both; otherwise it uses what was recorded, so that down,
// config and the overlay show the same relays without asking Docker.
func placeForwards(ctx context.Context, env *environment, docker *compose.Docker, build bool, stderr io.Writer) (hybrid.Placement, []compose.Relay, error) {
	fs := env.project.Config.Forwards
	if len(fs) == 0 {
		return hybrid.Placement{}, nil, nil
	}
	self, err := os.Executable()
	if err != nil {
		return hybrid.Placement{}, nil, fmt.Errorf("find the devmtls executable for the forwards' relays: %w", err)
	}
	var route *hybrid.Route
	image := ""
	if build {
		r, ref, exe, made, err := hybrid.PrepareRelays(ctx, docker, self, os.Getenv)
		if err != nil {
			return hybrid.Placement{}, nil, fmt.Errorf("x-devmtls.forwards: %w", err)
		}
		if made {
			fmt.Fprintf(stderr, "devmtls: made the forwards' relay image %s from %s\n", ref, exe)
		}
		route, image = &r, ref
	}
	pl, err := hybrid.Place(ctx, env.dir, fs, route, image)
	if err != nil {
		return hybrid.Placement{}, nil, fmt.Errorf("x-devmtls.forwards: %w", err)
	}
	if pl.RelayImage == "" {
		// Never started yet: the image this devmtls would make.
		if pl.RelayImage, err = relay.ImageRef(self); err != nil {
			return hybrid.Placement{}, nil, err
		}
	}
	return pl, pl.Relays(fs), nil
}

// startForwards makes the environment's background process serve the
// project's forwards before compose starts the services, and says where each
// is reachable. An unreachable cluster is a warning: the forward retries.
func (o *composeRunOptions) startForwards(ctx context.Context) error {
	spec, err := forwardsSpec(o.env.project, o.placement, true)
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
		var where []string
		if len(f.Containers) > 0 {
			where = append(where, "for containers at "+strings.Join(f.Containers, ", ")+" (relay "+compose.RelayService(f.As)+")")
		}
		if len(f.Host) > 0 {
			where = append(where, fmt.Sprintf("for host processes at %s (%s)", f.Host[0], forwards.AddrVar(f.As, 0)))
		}
		fmt.Fprintf(w, "devmtls: %s %s -> %s in namespace %s %s\n", verb, f.As, f.Target, f.Namespace, strings.Join(where, ", "))
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
		return nil
	}
	// None runs; a state file left behind (or committed) still names a
	// process, and the user should learn that devmtls did not touch it.
	found, err := hybrid.Leftover(o.env.dir)
	if err != nil {
		return err
	}
	if found != "" {
		fmt.Fprintln(o.g.stderr, "devmtls: "+found)
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

// markRelays fills in the state of each forward's relay container, which
// only the Engine knows.
func markRelays(ctx context.Context, docker *compose.Docker, project string, st *hybrid.State) error {
	if st == nil || !slices.ContainsFunc(st.Forwards, func(f hybrid.ForwardState) bool { return len(f.Containers) > 0 }) {
		return nil
	}
	containers, err := docker.ProjectContainers(ctx, project)
	if err != nil {
		return err
	}
	for i := range st.Forwards {
		f := &st.Forwards[i]
		if len(f.Containers) == 0 {
			continue
		}
		r := &hybrid.RelayState{Service: compose.RelayService(f.As), State: "missing"}
		for _, c := range containers {
			if c.Labels[compose.RelayLabel] == f.As {
				r.Container, r.State = c.Name, c.State
			}
		}
		f.Relay = r
	}
	return nil
}

// relayColumn is a forward's relay in the status table: its container's
// state and the host listener it passes connections to.
func relayColumn(f hybrid.ForwardState) string {
	if f.Relay == nil {
		return "-"
	}
	to := f.Gateway
	if len(to) == 0 {
		to = f.Host // Docker Desktop: the relay reaches loopback
	}
	if len(to) == 0 {
		return f.Relay.State
	}
	return f.Relay.State + " -> " + to[0]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// removeStaleRelays removes the relay containers of forwards the project no
// longer declares. Compose would keep them as orphans — answering to a name
// that leads nowhere, and, at down without --remove-orphans, holding on to
// the networks compose then cannot remove. devmtls made them (they carry
// compose.RelayLabel), so it removes them.
func removeStaleRelays(ctx context.Context, docker *compose.Docker, p *compose.Project, stderr io.Writer) error {
	containers, err := docker.ProjectContainers(ctx, p.Name)
	if err != nil {
		return err
	}
	for _, c := range containers {
		as := c.Labels[compose.RelayLabel]
		if as == "" || slices.ContainsFunc(p.Config.Forwards, func(f forwards.Forward) bool { return f.As == as }) {
			continue
		}
		if err := docker.RemoveContainer(ctx, c.ID); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "devmtls: removed %s, the relay of forward %s, which the project no longer declares\n", c.Name, as)
	}
	return nil
}
