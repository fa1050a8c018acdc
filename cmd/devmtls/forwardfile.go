package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/hybrid"
	"github.com/devmtls/devmtls/internal/devenv"
	"github.com/devmtls/devmtls/portforward"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

// envLogFormat sets --log-format's default.
const envLogFormat = "DEVMTLS_LOG_FORMAT"

// fileEntry is one forward of a forwards file, ready to serve.
type fileEntry struct {
	fwd  forwards.Forward
	opts portforward.Options
	// ports maps each declared port to the port listened on.
	ports map[int]int
}

// addrVar is one NAME_ADDR=HOST:PORT line.
type addrVar struct{ name, value string }

// addKubeFlags registers kubectl's connection flags (from kubectl's own
// library) and kubectl's -v.
func (o *forwardOptions) addKubeFlags(cmd *cobra.Command) {
	o.kube.AddFlags(cmd.Flags())
	cmd.Flags().IntVarP(&o.verbosity, "v", "v", 0, "log level of the Kubernetes client library, as kubectl's -v (6 shows every API request)")
	o.registerFlagCompletion(cmd)
}

// addFileFlags registers -f and --log-format.
func (o *forwardOptions) addFileFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&o.file, "filename", "f", "", "serve every forward FILE declares: a forwards file (forwards: [...]) or a compose file (its x-devmtls.forwards)")
	cmd.MarkFlagFilename("filename", "yaml", "yml")
	def := os.Getenv(envLogFormat)
	if def == "" {
		def = "text"
	}
	fl.StringVar(&o.logFormat, "log-format", def, "how events (listening, connection opened/closed, pod switched, error) are logged on stderr, one per line: text, or json (then stderr holds only events) (env "+envLogFormat+")")
}

// args checks the positional arguments against -f: one or the other.
func (o *forwardOptions) args(c *cobra.Command, args []string) error {
	switch {
	case o.file != "" && len(args) > 0:
		return usageErrorf("-f %s and the TYPE/NAME arguments (%s) both say what to forward; give one of them (see '%s --help')", o.file, args[0], c.CommandPath())
	case o.file == "" && len(args) == 0:
		return usageErrorf("nothing to forward: give TYPE/NAME [LOCAL:]REMOTE..., e.g. svc/orders 8443:443, or -f FILE with a forwards file or a compose file (see '%s --help')", c.CommandPath())
	}
	return nil
}

// completeLogging applies -v and checks --log-format.
func (o *forwardOptions) completeLogging() error {
	if o.verbosity > 0 {
		// client-go logs through klog; kubectl's -v sets klog's verbosity.
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		if err := fs.Set("v", strconv.Itoa(o.verbosity)); err != nil {
			return usageErrorf("-v: %v", err)
		}
	}
	switch o.logFormat {
	case portforward.LogFormatText, portforward.LogFormatJSON:
	default:
		return usageErrorf("--log-format: use text or json, got %q", o.logFormat)
	}
	return nil
}

// events is the forward's event log on stderr, in --log-format.
func (o *forwardOptions) events() (func(portforward.Event), error) {
	ev, err := portforward.NewEventLogger(o.g.stderr, o.logFormat)
	if err != nil {
		return nil, usageErrorf("--log-format: %v", err)
	}
	return ev, nil
}

// perTargetFlags set what a forwards file sets per entry.
var perTargetFlags = []struct{ flag, key string }{
	{"secret", "secret"}, {"server-name", "server_name"}, {"protocol", "protocol"}, {"cluster-creds", "creds"},
}

// completeFile reads -f and prepares one forward per entry: its own
// connection (the entry's context and namespace over --context and -n, the
// other kubectl flags for all), credentials and listen ports.
func (o *forwardOptions) completeFile(cmd *cobra.Command) error {
	ctx := cmd.Context()
	for _, f := range perTargetFlags {
		if fl := cmd.Flags().Lookup(f.flag); fl != nil && fl.Changed {
			return usageErrorf("--%s sets it for TYPE/NAME arguments; with -f, set %s: in the entries of %s", f.flag, f.key, o.file)
		}
	}
	ff, err := compose.LoadForwardsFile(ctx, o.file)
	if err != nil {
		return err
	}
	dir, req := "", certs.Request{}
	if ff.Project != nil {
		// The compose project's own environment, as devmtls env and ide
		// use: the same dev keypair and the same NAME_ADDR.
		cwd, err := os.Getwd()
		if err != nil {
			return err
		}
		dir = devenv.ResolveDirForProject(o.g.dir, cwd, os.LookupEnv, ff.Project.Dir)
		req = compose.Request(ff.Project, req)
	} else if dir, err = o.g.envDir(); err != nil {
		return err
	}
	if err := o.completeLocal(ctx, dir, req); err != nil {
		return err
	}
	addrs := []string{"127.0.0.1"}
	if cmd.Flags().Changed("address") {
		addrs = o.addresses
	}
	ports, err := o.placeFile(ctx, ff, dir, addrs)
	if err != nil {
		return err
	}
	o.entries = nil
	for _, f := range ff.Forwards {
		cfg, client, ns, err := o.connect(f.Context, f.Namespace)
		if err != nil {
			return fmt.Errorf("%s: forward %s: %w", o.file, f.As, err)
		}
		e := fileEntry{fwd: f, ports: map[int]int{}}
		t := portforward.Target{Kind: f.Target.Kind, Name: f.Target.Name}
		for _, p := range f.Target.Ports {
			port := ports.Port(f.As, p.Local)
			e.ports[p.Local] = port
			t.Ports = append(t.Ports, portforward.PortSpec{Local: port, Remote: p.Remote})
		}
		e.opts = o.opts
		e.opts.Targets, e.opts.Addresses = []portforward.Target{t}, addrs
		e.opts.Config, e.opts.Client, e.opts.Namespace = cfg, client, ns
		e.opts.Secret, e.opts.ServerName, e.opts.Protocol = f.Secret, f.ServerName, f.Protocol
		e.opts.ClusterCredsDir = f.Creds
		// The table says what listens where; stdout carries NAME_ADDR only.
		e.opts.Out = io.Discard
		as := f.As
		if events := o.opts.Events; events != nil {
			// Each entry's events carry its name, as the background
			// forwards' do.
			e.opts.Events = func(ev portforward.Event) {
				ev.Name = as
				events(ev)
			}
		}
		if o.logFormat != portforward.LogFormatJSON {
			e.opts.Logf = func(format string, args ...any) {
				fmt.Fprintf(o.g.stderr, "devmtls forward: %s: "+format+"\n", append([]any{as}, args...)...)
			}
		}
		o.entries = append(o.entries, e)
	}
	o.fileVars = fileVars(o.entries, addrs[0])
	return nil
}

// placeFile chooses the listen ports. In an environment (a compose project,
// or dev credentials) they are the environment's recorded ports for
// forwards of those names (hybrid.Place), so NAME_ADDR is what devmtls env
// and devmtls ide say. Otherwise they are derived from the file's path and
// the forward's name and port: the same from run to run while free.
func (o *forwardOptions) placeFile(ctx context.Context, ff *compose.ForwardsFile, dir string, addrs []string) (hybrid.HostPorts, error) {
	if ff.Project != nil || o.live != nil {
		if ff.Project != nil {
			st, err := hybrid.Read(dir)
			if err != nil {
				return nil, err
			}
			if st != nil {
				return nil, fmt.Errorf("the forwards of %s are already served by its background process (devmtls up started it; devmtls status shows them): use those, or stop them with devmtls down first", o.file)
			}
		}
		pl, err := hybrid.Place(ctx, dir, ff.Forwards, nil, "")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.file, err)
		}
		return pl.Ports, nil
	}
	out := hybrid.HostPorts{}
	used := map[int]bool{}
	for _, f := range ff.Forwards {
		out[f.As] = map[int]int{}
		for _, declared := range f.Ports() {
			seed := ff.Path + "\x00" + f.As + "\x00" + strconv.Itoa(declared)
			port, err := forwards.StablePort(seed, used, func(p int) bool { return portFree(addrs, p) })
			if err != nil {
				return nil, fmt.Errorf("%s: forward %s: %w", o.file, f.As, err)
			}
			used[port] = true
			out[f.As][declared] = port
		}
	}
	return out, nil
}

// portFree reports whether port can be listened on at every address.
func portFree(addrs []string, port int) bool {
	for _, a := range addrs {
		if a == "localhost" {
			a = "127.0.0.1"
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// fileVars are the NAME_ADDR lines, as devmtls env spells them: NAME_ADDR
// for the first declared port, and NAME_PORT_ADDR per declared port when
// there are several.
func fileVars(entries []fileEntry, host string) []addrVar {
	if host == "localhost" || host == "" {
		host = "127.0.0.1"
	}
	var out []addrVar
	for _, e := range entries {
		declared := e.fwd.Ports()
		for i, d := range declared {
			addr := net.JoinHostPort(host, strconv.Itoa(e.ports[d]))
			if i == 0 {
				out = append(out, addrVar{forwards.AddrVar(e.fwd.As, 0), addr})
			}
			if len(declared) > 1 {
				out = append(out, addrVar{forwards.AddrVar(e.fwd.As, d), addr})
			}
		}
	}
	return out
}

// printVars writes NAME=VALUE lines, ready for eval or a dotenv file.
func printVars(w io.Writer, vars []addrVar) {
	for _, v := range vars {
		fmt.Fprintf(w, "%s=%s\n", v.name, v.value)
	}
}

// printTable writes what listens where, one line per declared port.
func printTable(w io.Writer, entries []fileEntry) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTARGET\tNAMESPACE\tCONTEXT\tLISTEN\tREMOTE\tVARIABLE")
	for _, e := range entries {
		declared := e.fwd.Ports()
		for _, p := range e.fwd.Target.Ports {
			var listen []string
			for _, a := range e.opts.Addresses {
				for _, h := range expandLocalhost(a) {
					listen = append(listen, net.JoinHostPort(h, strconv.Itoa(e.ports[p.Local])))
				}
			}
			variable := forwards.AddrVar(e.fwd.As, 0)
			if len(declared) > 1 {
				variable = forwards.AddrVar(e.fwd.As, p.Local)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.fwd.As, e.fwd.Target, orDash(e.opts.Namespace), orDash(e.fwd.Context),
				strings.Join(listen, ","), p.Remote, variable)
		}
	}
	tw.Flush()
}

func expandLocalhost(a string) []string {
	if a == "localhost" {
		return []string{"127.0.0.1", "::1"}
	}
	return []string{a}
}

// runFile serves every entry of -f in this process, one forwarder each, and
// says where they listen once all do.
func (o *forwardOptions) runFile(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fwds []*portforward.Forwarder
	closeAll := func() {
		for _, f := range fwds {
			f.Close()
		}
	}
	for _, e := range o.entries {
		f, err := portforward.New(e.opts)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s: forward %s: %w", o.file, e.fwd.As, err)
		}
		if err := f.Start(ctx); err != nil {
			closeAll()
			return fmt.Errorf("%s: forward %s: %w", o.file, e.fwd.As, err)
		}
		fwds = append(fwds, f)
	}
	if o.logFormat != portforward.LogFormatJSON {
		// In JSON, stderr holds events only; their listening events say
		// the same.
		printTable(o.g.stderr, o.entries)
	}
	printVars(o.g.stdout, o.fileVars)
	if o.live != nil {
		go o.live.Run(ctx)
	}
	var wg sync.WaitGroup
	for _, f := range fwds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Serve(ctx)
		}()
	}
	wg.Wait()
	return nil
}
