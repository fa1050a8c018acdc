package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/devenv"
)

// environment is what a command works on: the Compose project it runs in (nil
// outside one), the environment directory and its credentials store.
type environment struct {
	project *compose.Project
	dir     string
	store   *certs.Store
	cwd     string
}

// openEnvironment loads the Compose project (from the project flags, else by
// compose's discovery) and resolves the environment directory next to it:
// --dir, $DEVMTLS_DIR, .devmtls in the project directory, else .devmtls in the
// working directory. With requireProject, having no compose file is an error;
// otherwise it just means there is no project. dirFlag overrides g.dir when
// the command parsed --dir itself.
func (g *globalOptions) openEnvironment(ctx context.Context, pf *projectFlags, dirFlag string, requireProject bool) (*environment, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("find the working directory: %w", err)
	}
	if pf == nil {
		pf = &projectFlags{}
	}
	var p *compose.Project
	if requireProject || pf.explicit() {
		p, err = compose.Load(ctx, pf.loadOptions(cwd))
	} else {
		p, err = compose.Find(ctx, pf.loadOptions(cwd))
	}
	if err != nil {
		return nil, err
	}
	if dirFlag == "" {
		dirFlag = g.dir
	}
	projectDir := ""
	if p != nil {
		projectDir = p.Dir
	}
	dir := devenv.ResolveDirForProject(dirFlag, cwd, os.LookupEnv, projectDir)
	return &environment{project: p, dir: dir, store: &certs.Store{Dir: dir}, cwd: cwd}, nil
}

// ensureCredentials is the one place where devmtls asks the store for
// credentials: the project's x-devmtls (so the certificate covers every
// compose service) with whatever the user set by flag taking precedence.
// rotate replaces them unconditionally.
func (e *environment) ensureCredentials(ctx context.Context, flags certs.Request, rotate bool) (*certs.Result, error) {
	req := compose.Request(e.project, flags)
	if rotate {
		return e.store.Rotate(ctx, req)
	}
	return e.store.Ensure(ctx, req)
}

// announceCredentials says on w that the credentials were just created or
// renewed, for the commands whose output is not a summary of them (certs
// prints its own).
func announceCredentials(w io.Writer, res *certs.Result) {
	switch res.Action {
	case certs.Created:
		fmt.Fprintf(w, "devmtls: created dev credentials in %s\n", res.Credentials.Dir)
	case certs.Renewed:
		fmt.Fprintf(w, "devmtls: renewed dev credentials in %s (%s)\n", res.Credentials.Dir, res.Reason)
	}
}

// followCopies brings the compose copies along after a command other than
// devmtls up (which writes them itself) created, renewed or rotated the
// credentials, so running containers find the new files in their mounted
// directories. A copy that cannot be remade is a warning: up remakes it.
func (e *environment) followCopies(ctx context.Context, res *certs.Result, stderr io.Writer) {
	if res.Action == certs.Unchanged {
		return
	}
	updated, err := compose.RefreshCopies(ctx, e.dir, res.Credentials)
	if len(updated) > 0 {
		fmt.Fprintf(stderr, "devmtls: brought the compose copies of %s up to date (devmtls up recreates their containers)\n", strings.Join(updated, ", "))
	}
	if err != nil {
		fmt.Fprintf(stderr, "devmtls: warning: not every compose copy could be brought up to date (devmtls up will): %v\n", err)
	}
}

// credentialsEnvironment is openEnvironment for the credential commands, which
// must keep working when the compose project around them is broken: they warn
// and carry on without it (a nil project keeps the stored service names).
func (g *globalOptions) credentialsEnvironment(ctx context.Context) (*environment, error) {
	env, err := g.openEnvironment(ctx, nil, "", false)
	if err == nil {
		return env, nil
	}
	// Where discovery itself fails (a COMPOSE_FILE naming no file), there is
	// no telling which environment is meant: say why, as compose would.
	dir, derr := g.envDir()
	if derr != nil {
		return nil, derr
	}
	fmt.Fprintf(g.stderr, "devmtls: warning: ignoring the compose project: %v\n", err)
	return &environment{dir: dir, store: &certs.Store{Dir: dir}}, nil
}
