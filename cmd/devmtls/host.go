package main

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/hostenv"
	"github.com/devmtls/devmtls/hybrid"
	"github.com/spf13/cobra"
)

// hostFlags are the flags env, exec and ide share: whose identity, and which
// variables beyond the credential paths.
type hostFlags struct {
	service      string
	runtimeTrust bool
	postgres     bool
	// startForwards: serve the project's forwards in this process when no
	// background process does (devmtls exec, whose command uses them).
	startForwards bool
}

// runtimeTrustHelp is shared by the three commands so the warning about
// replaced system roots reads the same everywhere.
const runtimeTrustHelp = `also set NODE_EXTRA_CA_CERTS (adds the dev CA to Node.js's roots) and SSL_CERT_FILE, REQUESTS_CA_BUNDLE and GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, which REPLACE the system roots for OpenSSL, Go, Python requests and gRPC: that process then trusts only the dev CA and cannot reach public HTTPS hosts`

func (f *hostFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.service, "service", "", "use this Compose service's identity (its own leaf in ca mode; the shared keypair in shared mode); default: the host identity")
	fl.BoolVar(&f.runtimeTrust, "runtime-trust", false, runtimeTrustHelp)
	fl.BoolVar(&f.postgres, "postgres", false, "also set libpq's PGSSLCERT, PGSSLKEY, PGSSLROOTCERT and PGSSLMODE=verify-full (psql, psycopg, pgx, node-postgres)")
}

// hostInput ensures the environment's credentials (creating them on first use,
// renewing them when due; no Docker or compose file needed) and returns what
// the variables are built from. Inside a Compose project the credentials cover
// its services, and --service takes that service's x-devmtls variable names
// and its postgres layout, so a service run from the IDE sees exactly what it
// sees in its container.
func hostInput(ctx context.Context, g *globalOptions, f hostFlags) (hostenv.Input, error) {
	if f.service != "" {
		// The name also ends up in IDE file names; refuse anything that is
		// not a Compose service name before it gets near a path.
		if err := certs.ValidateServiceName(f.service); err != nil {
			return hostenv.Input{}, usageErrorf("--service: %v", err)
		}
	}
	env, err := g.credentialsEnvironment(ctx)
	if err != nil {
		return hostenv.Input{}, err
	}
	res, err := env.ensureCredentials(ctx, certs.Request{}, false)
	if err != nil {
		return hostenv.Input{}, err
	}
	announceCredentials(g.stderr, res)
	env.followCopies(ctx, res, g.stderr)
	names := hostenv.DefaultNames()
	postgres := f.postgres
	if f.service != "" && env.project != nil {
		svc, err := env.project.Service(f.service)
		if err != nil {
			return hostenv.Input{}, usageErrorf("--service: %v", err)
		}
		names = svc.Settings.Env
		postgres = postgres || svc.Settings.HasFormat(certs.FormatPostgres)
	}
	id, err := res.Credentials.Service(f.service)
	if err != nil {
		return hostenv.Input{}, usageErrorf("--service: %v", err)
	}
	in := hostenv.Input{Files: id.Paths, Names: names, Postgres: postgres, RuntimeTrust: f.runtimeTrust}
	if in.Extra, err = forwardVars(ctx, g, env, f.startForwards); err != nil {
		return hostenv.Input{}, err
	}
	return in, nil
}

// forwardVars names where each forward the project declares is reachable from
// the host: ORDERS_ADDR=127.0.0.1:PORT for its first declared port, and
// ORDERS_5432_ADDR per declared port when there are several. The ports are
// the environment's own, chosen once and kept (hybrid.Place), so the
// variables hold across up and down — IDE run configurations keep working.
// With start (devmtls exec) the forwards are served by this process when no
// background process does, until it exits; otherwise a warning says they are
// not running.
func forwardVars(ctx context.Context, g *globalOptions, env *environment, start bool) ([]hostenv.Var, error) {
	if env.project == nil || len(env.project.Config.Forwards) == 0 {
		return nil, nil
	}
	fs := env.project.Config.Forwards
	pl, err := hybrid.Place(ctx, env.dir, fs, nil, "")
	if err != nil {
		return nil, err
	}
	st, err := hybrid.Read(env.dir)
	if err != nil {
		return nil, err
	}
	var running []hybrid.ForwardState
	switch {
	case st != nil:
		running = st.Forwards
	case start:
		spec, err := forwardsSpec(env.project, pl, false)
		if err != nil {
			return nil, err
		}
		local, err := hybrid.ServeLocal(ctx, env.dir, spec, func(format string, args ...any) {
			fmt.Fprintf(g.stderr, "devmtls: forward "+format+"\n", args...)
		})
		if err != nil {
			return nil, err
		}
		// The forwards live as long as this process: exec returns when its
		// command does, and the process ends right after.
		context.AfterFunc(ctx, local.Close)
		running = local.Forwards()
	default:
		fmt.Fprintf(g.stderr, "devmtls: warning: the forwards of %s are not running now (devmtls up -d starts them; devmtls exec runs them itself); their _ADDR variables name where they will listen\n", env.project.Name)
	}
	for _, f := range running {
		if f.LastError != "" {
			fmt.Fprintf(g.stderr, "devmtls: warning: forward %s: %s\n", f.As, f.LastError)
		}
	}
	var vars []hostenv.Var
	for _, f := range fs {
		ports := f.Ports()
		for i, declared := range ports {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(pl.Ports.Port(f.As, declared)))
			if i == 0 {
				vars = append(vars, hostenv.Var{Name: forwards.AddrVar(f.As, 0), Value: addr})
			}
			if len(ports) > 1 {
				vars = append(vars, hostenv.Var{Name: forwards.AddrVar(f.As, declared), Value: addr})
			}
		}
	}
	return vars, nil
}

// hostVars is hostInput followed by hostenv.Build.
func hostVars(ctx context.Context, g *globalOptions, f hostFlags) (hostenv.Input, []hostenv.Var, error) {
	in, err := hostInput(ctx, g, f)
	if err != nil {
		return in, nil, err
	}
	vars, err := hostenv.Build(in)
	return in, vars, err
}
