package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/hybrid"
	"github.com/spf13/cobra"
)

// statusOptions backs `devmtls status`.
type statusOptions struct {
	g       *globalOptions
	project projectFlags
	json    bool
}

// statusJSON is the stable JSON shape of `devmtls status --json`.
type statusJSON struct {
	Project     *statusProject          `json:"project"`
	EnvDir      string                  `json:"env_dir"`
	Docker      statusDocker            `json:"docker"`
	Compose     *statusCompose          `json:"compose"`
	Credentials *statusCredentials      `json:"credentials"`
	Services    []compose.ServiceStatus `json:"services"`
	// Forwards are the declared forwards' background process, nil when none runs.
	Forwards *hybrid.State `json:"forwards"`
	// ForwardsError says why the forwards' state could not be read.
	ForwardsError string `json:"forwards_error,omitempty"`
}

type statusProject struct {
	Name  string   `json:"name"`
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
}

type statusDocker struct {
	Reachable     bool   `json:"reachable"`
	Host          string `json:"host,omitempty"`
	APIVersion    string `json:"api_version,omitempty"`
	ServerVersion string `json:"server_version,omitempty"`
	Error         string `json:"error,omitempty"`
}

// statusCompose is the compose devmtls drives: its command, line and version.
type statusCompose struct {
	Command        string                 `json:"command,omitempty"`
	Implementation compose.Implementation `json:"implementation,omitempty"`
	Version        string                 `json:"version,omitempty"`
	// Error says why there is no compose to drive, or why it did not say
	// its version.
	Error string `json:"error,omitempty"`
}

type statusCredentials struct {
	Mode        certs.Mode    `json:"mode"`
	KeyType     certs.KeyType `json:"key_type"`
	Names       []string      `json:"names"`
	NotAfter    time.Time     `json:"not_after"`
	Expired     bool          `json:"expired"`
	Fingerprint string        `json:"fingerprint_sha256"`
	Error       string        `json:"error,omitempty"`
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	o := &statusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show Docker, credentials, containers and forwards",
		Long: `Report what runs: whether the Docker daemon is reachable (and its API version),
which compose devmtls drives (docker compose or docker-compose, and its version),
the environment's credentials and when they expire, and for every compose
service its containers and whether their credentials are mounted:

  current    mounted, created with the current credentials
  stale      mounted, but created before the credentials changed (devmtls up recreates it)
  missing    a credentials mount is missing (started without devmtls?)
  opted-out  the service has x-devmtls: false

and the forwards declared in x-devmtls.forwards: where containers and host
processes reach each, the state of the relay container that answers the
containers and the host listener it passes them to, the pod serving it, its
connections, the SHA-256 fingerprints of the dev certificate it serves and of
the cluster certificate it presents to the pod (STALE when the dev certificate
is not the environment's current one: forwards switch within two seconds of a
change), and its last error.

A part that cannot be looked at — the Docker daemon unreachable, no compose
installed — is reported as unavailable and status still exits 0, so a user of
forwards or host commands alone gets a report. It exits 1 when a compose
project named with -f or --project-directory cannot be inspected because
Docker is unreachable, or when the project or environment cannot be read.`,
		Example: `  devmtls status
  devmtls status --json | jq '.services[] | {name, containers: [.containers[].credentials]}'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return o.Run(c) },
	}
	o.project.addTo(cmd.Flags())
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func (o *statusOptions) Run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	env, err := o.g.openEnvironment(ctx, &o.project, "", false)
	if err != nil {
		return err
	}
	out := statusJSON{EnvDir: env.dir, Services: []compose.ServiceStatus{}}
	if p := env.project; p != nil {
		out.Project = &statusProject{Name: p.Name, Dir: p.Dir, Files: p.Files}
	}
	out.Compose = composeStatus(ctx)

	creds, err := env.store.Load(ctx)
	switch {
	case err == nil:
		out.Credentials = &statusCredentials{Mode: creds.Mode, KeyType: creds.KeyType, Names: creds.Names, NotAfter: creds.NotAfter,
			Expired: !time.Now().Before(creds.NotAfter), Fingerprint: creds.Fingerprint}
	case !errors.Is(err, fs.ErrNotExist):
		out.Credentials = &statusCredentials{Error: err.Error()}
		creds = nil
	}

	if st, err := hybrid.Read(env.dir); err != nil {
		out.ForwardsError = err.Error()
	} else {
		out.Forwards = st
		markStaleForwards(st, creds)
	}

	docker, dockerErr := compose.ConnectDocker(ctx)
	if dockerErr != nil {
		out.Docker.Error = dockerErr.Error()
	} else {
		defer docker.Close()
		out.Docker = statusDocker{Reachable: true, Host: docker.Host, APIVersion: docker.APIVersion}
		out.Docker.ServerVersion, _ = docker.ServerVersion(ctx) // optional detail
		if env.project != nil {
			if err := markRelays(ctx, docker, env.project.Name, out.Forwards); err != nil {
				return err
			}
			var plan *compose.Plan
			if creds != nil {
				plan, _ = compose.NewPlan(env.project, creds, env.dir, nil) // nil plan: states are "unknown"
			}
			if out.Services, err = compose.ServiceStatuses(ctx, docker, env.project, plan); err != nil {
				return err
			}
		}
	}

	if o.json {
		if err := writeJSON(o.g.stdout, out); err != nil {
			return err
		}
	} else {
		printStatus(o.g.stdout, out)
	}
	if dockerErr != nil && o.project.explicit() {
		// The containers of the project asked about are what is missing.
		return &codedError{code: exitError, err: fmt.Errorf("cannot show the containers of project %s: %w", env.project.Name, dockerErr)}
	}
	return nil
}

// markStaleForwards flags the forwards that serve a dev certificate other than
// the environment's: a forward reloads within two seconds of a change, so one
// that stays stale is stuck (its log says why).
func markStaleForwards(st *hybrid.State, creds *certs.Credentials) {
	if st == nil || creds == nil {
		return
	}
	for i := range st.Forwards {
		f := &st.Forwards[i]
		f.Stale = f.DevFingerprint != "" && f.DevFingerprint != creds.Fingerprint
	}
}

// shortFingerprint is the first four bytes of a fingerprint, enough to tell
// two certificates apart in a table (the JSON has them whole).
func shortFingerprint(fp string) string {
	if fp == "" {
		return "-"
	}
	if len(fp) > 11 {
		return fp[:11] + "…"
	}
	return fp
}

func printStatus(w io.Writer, s statusJSON) {
	if s.Project != nil {
		fmt.Fprintf(w, "Project:      %s (%s)\n", s.Project.Name, s.Project.Dir)
	} else {
		fmt.Fprintf(w, "Project:      none (no compose file here)\n")
	}
	fmt.Fprintf(w, "Environment:  %s\n", s.EnvDir)
	switch {
	case s.Docker.Reachable:
		fmt.Fprintf(w, "Docker:       Engine %s at %s, API %s\n", s.Docker.ServerVersion, s.Docker.Host, s.Docker.APIVersion)
	case s.Project != nil:
		fmt.Fprintf(w, "Docker:       unavailable, so the containers are not shown: %s\n", s.Docker.Error)
	default:
		fmt.Fprintf(w, "Docker:       unavailable: %s\n", s.Docker.Error)
	}
	switch c := s.Compose; {
	case c.Command == "":
		fmt.Fprintf(w, "Compose:      %s\n", c.Error)
	case c.Error != "":
		fmt.Fprintf(w, "Compose:      %s (its version is unknown: %s)\n", c.Command, c.Error)
	default:
		fmt.Fprintf(w, "Compose:      %s %s (%s)\n", c.Command, c.Version, implementationName(c.Implementation))
	}
	switch c := s.Credentials; {
	case c == nil:
		fmt.Fprintf(w, "Credentials:  none yet (devmtls up or devmtls certs creates them)\n")
	case c.Error != "":
		fmt.Fprintf(w, "Credentials:  %s\n", c.Error)
	default:
		state := humanDuration(time.Until(c.NotAfter)) + " left"
		if c.Expired {
			state = "EXPIRED; devmtls up renews them"
		}
		fmt.Fprintf(w, "Credentials:  %s, %s, valid until %s (%s)\n", c.Mode, c.KeyType, c.NotAfter.Local().Format("2006-01-02 15:04 MST"), state)
		fmt.Fprintf(w, "  SHA-256:    %s\n", c.Fingerprint)
	}
	printForwardsStatus(w, s)
	if len(s.Services) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCONTAINER\tSTATE\tCREDENTIALS")
	for _, svc := range s.Services {
		mounts := make([]string, 0, len(svc.Mounts))
		for _, m := range svc.Mounts {
			mounts = append(mounts, m.Target)
		}
		if len(svc.Containers) == 0 {
			what := "not created"
			if !svc.Active {
				what = "profile not enabled"
			}
			creds := "at " + strings.Join(mounts, ", ")
			if !svc.OptedIn {
				creds = compose.CredsOptedOut
			}
			fmt.Fprintf(tw, "%s\t-\t%s\t%s\n", svc.Name, what, creds)
			continue
		}
		for _, c := range svc.Containers {
			creds := c.Credentials
			switch c.Credentials {
			case compose.CredsCurrent:
				creds = "mounted at " + strings.Join(mounts, ", ")
			case compose.CredsStale:
				creds = "stale (created before the credentials changed; run devmtls up)"
			case compose.CredsMissing:
				var missing []string
				for _, m := range c.MissingMounts {
					missing = append(missing, m.Target)
				}
				creds = "MISSING at " + strings.Join(missing, ", ") + " (run devmtls up)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", svc.Name, c.Name, c.State, creds)
		}
	}
	tw.Flush()
}

// composeStatus finds the compose devmtls would run and asks its version.
func composeStatus(ctx context.Context) *statusCompose {
	rt, err := compose.FindRuntime(os.LookupEnv)
	if err != nil {
		return &statusCompose{Error: err.Error()}
	}
	out := &statusCompose{Command: rt.String()}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a hung compose must not hang status; docker-compose v1 (Python) takes seconds to start on a loaded machine
	defer cancel()
	v, err := rt.Version(ctx)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Implementation, out.Version = v.Implementation, v.Version
	return out
}

// implementationName is how status names a compose line to people.
func implementationName(i compose.Implementation) string {
	switch i {
	case compose.ComposeV1:
		return "the Python docker-compose v1"
	case compose.ComposeV2:
		return "the Compose v2 line"
	}
	return string(i)
}

func printForwardsStatus(w io.Writer, s statusJSON) {
	switch {
	case s.ForwardsError != "":
		fmt.Fprintf(w, "Forwards:     %s\n", s.ForwardsError)
		return
	case s.Forwards == nil:
		return
	}
	fmt.Fprintf(w, "Forwards:     process %d, up since %s\n", s.Forwards.PID, s.Forwards.StartedAt.Local().Format("2006-01-02 15:04:05"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FORWARD\tTARGET\tCONTAINERS\tHOST\tRELAY\tPODS (OPEN/TOTAL)\tCONNECTIONS\tDEV CERT\tCLUSTER CERT\tLAST ERROR")
	for _, f := range s.Forwards.Forwards {
		pod, lastErr := podsColumn(f), f.LastError
		if lastErr == "" {
			lastErr = "-"
		} else if f.LastErrorAt != "" {
			lastErr = f.LastErrorAt + " " + lastErr
		}
		dev := shortFingerprint(f.DevFingerprint)
		if f.Stale {
			dev += " STALE (not the environment's; see " + hybrid.LogFile + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s/%s\t%s\t%s\t%s\t%s\t%d active, %d total\t%s\t%s\t%s\n", f.As, f.Namespace, f.Target,
			orDash(strings.Join(f.Containers, ",")), strings.Join(f.Host, ","), relayColumn(f), pod, f.Active, f.Total, dev, shortFingerprint(f.ClusterFingerprint), lastErr)
	}
	tw.Flush()
}

// podsColumn names the pods of a forward with their connections, open/total
// ("orders-a 2/10, orders-b 1/9"), or the pod it is pinned to.
func podsColumn(f hybrid.ForwardState) string {
	if len(f.Pods) == 0 {
		return orDash(f.Pod)
	}
	parts := make([]string, 0, len(f.Pods))
	for _, p := range f.Pods {
		parts = append(parts, fmt.Sprintf("%s %d/%d", p.Pod, p.Open, p.Total))
	}
	return strings.Join(parts, ", ")
}
