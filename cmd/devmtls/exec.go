package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/devmtls/devmtls/hostenv"
	"github.com/spf13/cobra"
)

// The exit codes env(1) and POSIX shells use when the command itself cannot
// be run.
const (
	exitNotExecutable = 126
	exitNotFound      = 127
)

// execOptions backs `devmtls exec`.
type execOptions struct {
	g    *globalOptions
	host hostFlags
	argv []string
}

func newExecCmd(g *globalOptions) *cobra.Command {
	o := &execOptions{g: g}
	cmd := &cobra.Command{
		Use:   "exec [flags] -- COMMAND [ARG...]",
		Short: "Run a command with the dev credential variables set",
		Long: `Run COMMAND with the variables 'devmtls env' prints added to the current
environment (MTLS_CERT, MTLS_KEY, MTLS_CA, MTLS_KEY_CERT; PGSSL* with
--postgres; runtime trust variables with --runtime-trust). Credentials are
created first when missing; no Docker or compose file is needed.

devmtls stays in front of COMMAND: SIGINT, SIGTERM, SIGHUP and SIGQUIT are
passed on to it (a Ctrl-C in the terminal reaches it once, from the terminal),
and devmtls exits with COMMAND's exit code, or 128+N when COMMAND died of
signal N. A command that is not found exits 127, one that cannot be run 126,
as with env(1).`,
		Example: `  devmtls exec -- python3 app.py
  devmtls exec --service orders -- go run ./cmd/orders
  devmtls exec --postgres -- psql "host=localhost dbname=app user=devmtls"
  devmtls exec --runtime-trust -- npm start`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("no command given: use 'devmtls exec -- COMMAND [ARG...]'")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			o.argv = args
			return o.Run(c)
		},
	}
	// Everything after the command belongs to it: `devmtls exec ls -l` works
	// without "--", like env(1) and kubectl exec.
	cmd.Flags().SetInterspersed(false)
	o.host.add(cmd)
	return cmd
}

func (o *execOptions) Run(cmd *cobra.Command) error {
	o.host.startForwards = true
	_, vars, err := hostVars(cmd.Context(), o.g, o.host)
	if err != nil {
		return err
	}
	path, err := lookCommand(o.argv[0])
	if err != nil {
		return err
	}
	env := hostenv.Merge(os.Environ(), vars)
	newChild := func(path string, argv []string) *exec.Cmd {
		return &exec.Cmd{Path: path, Args: argv, Env: env, Stdin: os.Stdin, Stdout: o.g.stdout, Stderr: o.g.stderr}
	}
	child := newChild(path, o.argv)
	// Subscribe before starting, so no signal falls between the two. While
	// subscribed, these signals no longer end devmtls; they are the child's.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwardedSignals()...)
	defer signal.Stop(sigs)
	err = child.Start()
	if errors.Is(err, syscall.ENOEXEC) {
		// A script without a #! line: run it with sh, as execvp(3), env(1)
		// and every shell do.
		child = newChild("/bin/sh", append([]string{"sh", path}, o.argv[1:]...))
		err = child.Start()
	}
	if err != nil {
		return startError(o.argv[0], err)
	}
	done := make(chan struct{})
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for {
			select {
			case s := <-sigs:
				if !deliveredByTerminal(s) {
					_ = child.Process.Signal(s) // the child may have just exited
				}
			case <-done:
				return
			}
		}
	}()
	waitErr := child.Wait()
	close(done)
	<-forwarded
	if waitErr != nil && child.ProcessState == nil {
		return fmt.Errorf("wait for %s: %w", o.argv[0], waitErr)
	}
	if code := exitCode(child.ProcessState); code != 0 {
		return passExitCode(code)
	}
	return nil
}

// lookCommand resolves name like a shell: through $PATH unless it holds a
// slash. Like env(1), a command found in "." through $PATH is run.
func lookCommand(name string) (string, error) {
	path, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		err = nil
	}
	if err == nil {
		return path, nil
	}
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return "", &codedError{code: exitNotFound, err: fmt.Errorf("%s: command not found in $PATH", name)}
	case errors.Is(err, fs.ErrNotExist):
		return "", &codedError{code: exitNotFound, err: fmt.Errorf("%s: no such file", name)}
	case errors.Is(err, fs.ErrPermission):
		return "", &codedError{code: exitNotExecutable, err: fmt.Errorf("%s: permission denied (is it executable? try chmod +x)", name)}
	}
	if errors.Is(err, syscall.EISDIR) || isDir(name) {
		return "", &codedError{code: exitNotExecutable, err: fmt.Errorf("%s: is a directory", name)}
	}
	return "", &codedError{code: exitNotExecutable, err: fmt.Errorf("%s: cannot run it: %v", name, unwrapExecError(err))}
}

func isDir(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

// startError classifies a failed start the way env(1) does.
func startError(name string, err error) error {
	inner := unwrapExecError(err)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The file vanished, or its #! interpreter does not exist.
		return &codedError{code: exitNotFound, err: fmt.Errorf("%s: no such file, or its #! interpreter is missing", name)}
	case errors.Is(err, fs.ErrPermission):
		return &codedError{code: exitNotExecutable, err: fmt.Errorf("%s: permission denied (is it executable? try chmod +x)", name)}
	}
	return &codedError{code: exitNotExecutable, err: fmt.Errorf("%s: cannot run it: %v", name, inner)}
}

// unwrapExecError drops the "fork/exec PATH:" and "exec: NAME:" prefixes Go
// adds, so the message names the command once.
func unwrapExecError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return errors.New(strings.TrimSpace(err.Error()))
}
