package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/hybrid"
	"github.com/devmtls/devmtls/internal/envdir"
	"github.com/spf13/cobra"
)

// composeRunOptions backs every command that runs compose with the user's
// files plus the overlay: up, down and the compose pass-through.
type composeRunOptions struct {
	g    *globalOptions
	args composeArgs
	// sub is the compose subcommand; rest are its arguments.
	sub  string
	rest []string
	// prepare: ensure the credentials and bring the copies up to date (the
	// commands that create or start containers). Otherwise the overlay is
	// rendered from the credentials already on disk, if any, and nothing
	// else is touched: `down` must never create or renew credentials.
	prepare bool
	// printOverlay prints the overlay instead of running compose.
	printOverlay bool

	env     *environment
	runtime *compose.Runtime
	// placement is where the project's forwards are reached (preparePlan).
	placement hybrid.Placement
}

// composeSubcommandsThatStart are the compose subcommands that create or
// (re)start containers, which need current credentials and copies.
var composeSubcommandsThatStart = []string{"up", "create", "run", "start", "restart"}

// composeSubcommandsWithoutDaemon never talk to the Docker daemon.
var composeSubcommandsWithoutDaemon = []string{"config", "convert", "version", "help"}

func (o *composeRunOptions) Complete(ctx context.Context) error {
	var err error
	o.env, err = o.g.openEnvironment(ctx, &o.args.project, o.args.dir, true)
	if err != nil {
		if errors.Is(err, compose.ErrNoProject) {
			return usageErrorf("%v", err)
		}
		return err
	}
	if o.printOverlay {
		return nil
	}
	o.runtime, err = compose.FindRuntime(os.LookupEnv)
	return err
}

func (o *composeRunOptions) Run(ctx context.Context) error {
	var docker *compose.Docker
	if !o.printOverlay && !slices.Contains(composeSubcommandsWithoutDaemon, o.sub) {
		d, err := compose.ConnectDocker(ctx)
		if err != nil {
			return err
		}
		defer d.Close()
		docker = d
	}
	wait, err := o.planWait(ctx)
	if err != nil {
		return err
	}
	p := o.env.project
	overlay := ""
	if o.prepare || o.printOverlay {
		plan, err := o.preparePlan(ctx, docker)
		if err != nil {
			return err
		}
		if o.printOverlay {
			_, err := o.g.stdout.Write(plan.Overlay)
			return err
		}
		overlay = overlayFor(plan)
	} else {
		var err error
		if overlay, err = o.existingOverlay(ctx); err != nil {
			return err
		}
	}
	if docker != nil && (o.sub == "up" || o.sub == "down") {
		if err := removeStaleRelays(ctx, docker, p, o.g.stderr); err != nil {
			return err
		}
	}
	// Declared forwards listen before compose starts the services, so the
	// first call a service makes already finds them. `up -d` leaves them
	// running in the background; a foreground `up` takes them down with it.
	forwards := o.sub == "up" && len(p.Config.Forwards) > 0
	if forwards {
		if err := o.startForwards(ctx); err != nil {
			return err
		}
	}
	args := append(append(append([]string{}, o.args.globals...), compose.ProjectArgs(p, overlay)...), o.sub)
	args = append(args, o.rest...)
	code, err := o.runtime.Run(ctx, args, compose.Stdio{In: os.Stdin, Out: o.g.stdout, Err: o.g.stderr})
	if wait != nil && err == nil && code == 0 {
		err = wait.run(ctx, docker, p.Name)
	}
	switch {
	case forwards && !detached(o.rest):
		// Not ctx: it is cancelled by the Ctrl-C that ended compose.
		if serr := o.stopForwards(context.Background()); serr != nil && err == nil {
			err = serr
		}
	case o.sub == "down" && err == nil && code == 0:
		err = o.stopForwards(ctx)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return passExitCode(code)
	}
	return nil
}

// preparePlan makes sure the credentials are valid for the project, then
// writes each service's copies and the overlay (only what changed). With
// Docker (the commands that create containers) the forwards' relays are
// placed and their image made.
func (o *composeRunOptions) preparePlan(ctx context.Context, docker *compose.Docker) (*compose.Plan, error) {
	p := o.env.project
	res, err := o.env.ensureCredentials(ctx, certs.Request{}, false)
	if err != nil {
		return nil, err
	}
	var relays []compose.Relay
	o.placement, relays, err = placeForwards(ctx, o.env, docker, docker != nil && o.prepare, o.g.stderr)
	if err != nil {
		return nil, err
	}
	announceCredentials(o.g.stderr, res)
	plan, err := compose.NewPlan(p, res.Credentials, o.env.dir, relays)
	if err != nil {
		return nil, err
	}
	wr, err := plan.Write(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range p.Services {
		if w := s.NamedUserWarning(); w != "" {
			fmt.Fprintf(o.g.stderr, "devmtls: warning: %s\n", w)
		}
	}
	if !o.printOverlay {
		names := p.ServiceNames()
		if len(names) == 0 {
			fmt.Fprintf(o.g.stderr, "devmtls: no service of project %s gets credentials (every one has %s: false)\n", p.Name, compose.Extension)
		} else if len(wr.Updated) > 0 || wr.OverlayChanged {
			fmt.Fprintf(o.g.stderr, "devmtls: %s credentials (valid until %s) for %s\n", res.Credentials.Mode,
				res.Credentials.NotAfter.Local().Format("2006-01-02 15:04"), strings.Join(names, ", "))
		}
	}
	return plan, nil
}

// existingOverlay renders the overlay from the credentials already on disk,
// so commands like `config` show and `down` address the same project `up`
// started. Without usable credentials there is no overlay; compose does not
// need it to find the project's containers. An environment directory devmtls
// refuses to use (a link in it, another user's) stops the command: nothing is
// run on a project whose environment may have been tampered with.
func (o *composeRunOptions) existingOverlay(ctx context.Context) (string, error) {
	warn := func(err error, hint string) (string, error) {
		if errors.Is(err, envdir.ErrRefused) {
			return "", err
		}
		fmt.Fprintf(o.g.stderr, "devmtls: warning: running compose without the devmtls overlay: %v%s\n", err, hint)
		return "", nil
	}
	creds, err := o.env.store.Load(ctx)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return warn(err, "")
	}
	_, relays, err := placeForwards(ctx, o.env, nil, false, o.g.stderr)
	if err != nil {
		return warn(err, "")
	}
	plan, err := compose.NewPlan(o.env.project, creds, o.env.dir, relays)
	if err != nil {
		return warn(err, " (run devmtls up to refresh it)")
	}
	if _, err := plan.WriteOverlay(); err != nil {
		return warn(err, "")
	}
	return overlayFor(plan), nil
}

// overlayFor is the overlay to pass to compose: none when it has no service
// (none gets credentials, no forward has a relay), since docker-compose v1
// reads a file whose services: is empty as the legacy version 1 format and
// refuses to merge it.
func overlayFor(plan *compose.Plan) string {
	if len(plan.Services) == 0 && len(plan.Relays) == 0 {
		return ""
	}
	return plan.OverlayPath()
}

// runComposeSubcommand runs compose's sub (up, down) with the command line's
// flags, which it reads itself wherever they stand; prepare as in
// composeRunOptions.
func runComposeSubcommand(g *globalOptions, sub string, prepare bool) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		ca, err := parseComposeArgs(args, false)
		if err != nil {
			return err
		}
		if shown, err := composeHelpRequested(c, ca); shown {
			return err
		}
		o := &composeRunOptions{g: g, args: ca, sub: sub, rest: ca.rest, prepare: prepare}
		if err := o.Complete(c.Context()); err != nil {
			return err
		}
		return o.Run(c.Context())
	}
}

// composeHelpRequested prints the command's help when -h/--help was meant for
// devmtls (cobra cannot see it: these commands parse their own flags).
func composeHelpRequested(c *cobra.Command, ca composeArgs) (bool, error) {
	if !ca.help {
		return false, nil
	}
	return true, c.Help()
}
