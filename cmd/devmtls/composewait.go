package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devmtls/devmtls/compose"
)

// waitPollInterval is how often devmtls asks the Engine while it waits for
// services in place of docker-compose v1.
const waitPollInterval = 500 * time.Millisecond

// upWait is `up --wait [--wait-timeout N]` devmtls carries out itself for
// docker-compose v1, which lacks the flags: compose runs `up -d`, then devmtls
// waits for the services to run (and be healthy) as the v2 line does.
type upWait struct {
	timeout  time.Duration // 0: no limit, as with compose
	services []string      // the services named on the command line; none: all
}

// takeWaitFlags removes --wait and --wait-timeout (N or =N, in seconds) from
// up's arguments, up to a "--". wait reports whether --wait was given.
func takeWaitFlags(args []string) (rest []string, wait bool, timeout time.Duration, err error) {
	rest = make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		value, hasValue := strings.CutPrefix(a, "--wait-timeout=")
		switch {
		case a == "--wait":
			wait = true
			continue
		case a == "--wait-timeout":
			if i+1 >= len(args) {
				return nil, false, 0, usageErrorf("--wait-timeout needs a number of seconds")
			}
			i++
			value, hasValue = args[i], true
		}
		if !hasValue {
			rest = append(rest, a)
			continue
		}
		secs, perr := strconv.Atoi(value)
		if perr != nil || secs < 0 {
			return nil, false, 0, usageErrorf("--wait-timeout %q: give a whole number of seconds", value)
		}
		timeout = time.Duration(secs) * time.Second
	}
	return rest, wait, timeout, nil
}

// planWait decides whether devmtls must wait in compose's place: only for
// `up --wait` with docker-compose v1. Then it takes the wait flags out of
// o.rest and makes the up detached, as --wait does in the v2 line.
func (o *composeRunOptions) planWait(ctx context.Context) (*upWait, error) {
	if o.sub != "up" || o.runtime == nil || !slices.ContainsFunc(o.rest, func(a string) bool { return a == "--wait" || strings.HasPrefix(a, "--wait-timeout") }) {
		return nil, nil
	}
	v, err := o.runtime.Version(ctx)
	if err != nil || v.Implementation != compose.ComposeV1 {
		// The v2 line knows the flags; a compose that does not say its
		// version gets them as given.
		return nil, nil
	}
	rest, wait, timeout, err := takeWaitFlags(o.rest)
	if err != nil {
		return nil, err
	}
	if !detached(rest) {
		rest = append([]string{"--detach"}, rest...)
	}
	o.rest = rest
	if !wait {
		return nil, nil
	}
	w := &upWait{timeout: timeout}
	known := append(o.env.project.ServiceNames(), o.env.project.OptedOut...)
	for _, a := range rest {
		if a == "--" {
			break
		}
		if slices.Contains(known, a) {
			w.services = append(w.services, a)
		}
	}
	return w, nil
}

// run waits for the services to be ready, within the timeout.
func (w *upWait) run(ctx context.Context, docker *compose.Docker, project string) error {
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	return docker.WaitReady(ctx, project, w.services, waitPollInterval)
}
