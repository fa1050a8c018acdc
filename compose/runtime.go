package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// EnvCompose overrides the compose command devmtls runs, e.g.
// DEVMTLS_COMPOSE=docker-compose or DEVMTLS_COMPOSE="docker compose".
const EnvCompose = "DEVMTLS_COMPOSE"

// Runtime is the compose command devmtls runs.
type Runtime struct {
	// Command is the program and its leading arguments: ["docker", "compose"]
	// or ["docker-compose"].
	Command []string
}

func (r *Runtime) String() string { return strings.Join(r.Command, " ") }

// FindRuntime picks `docker compose` when the Compose CLI plugin is installed,
// else the standalone `docker-compose`; $DEVMTLS_COMPOSE overrides both.
func FindRuntime(lookupEnv func(string) (string, bool)) (*Runtime, error) {
	if v, ok := lookupEnv(EnvCompose); ok && strings.TrimSpace(v) != "" {
		cmd := strings.Fields(v)
		if _, err := exec.LookPath(cmd[0]); err != nil {
			return nil, fmt.Errorf("%s=%q: %s is not installed or not in PATH", EnvCompose, v, cmd[0])
		}
		return &Runtime{Command: cmd}, nil
	}
	docker, dockerErr := exec.LookPath("docker")
	if dockerErr == nil && hasComposePlugin(lookupEnv) {
		return &Runtime{Command: []string{docker, "compose"}}, nil
	}
	if standalone, err := exec.LookPath("docker-compose"); err == nil {
		return &Runtime{Command: []string{standalone}}, nil
	}
	if dockerErr != nil {
		return nil, errors.New("Docker is not installed: install Docker Engine with the Compose plugin (https://docs.docker.com/engine/install/), or your distribution's docker.io and docker-compose packages")
	}
	return nil, errors.New("Docker Compose is not installed: install the Compose plugin (https://docs.docker.com/compose/install/linux/, package docker-compose-plugin) or the standalone docker-compose")
}

// hasComposePlugin looks for the docker-compose CLI plugin where the docker
// CLI looks for plugins, without running docker (which costs tens of ms).
func hasComposePlugin(lookupEnv func(string) (string, bool)) bool {
	var dirs []string
	if cfg, ok := lookupEnv("DOCKER_CONFIG"); ok && cfg != "" {
		dirs = append(dirs, filepath.Join(cfg, "cli-plugins"))
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".docker", "cli-plugins"))
	}
	dirs = append(dirs, "/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
		"/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "docker-compose")); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// ProjectArgs are compose's global flags that select exactly the project
// devmtls loaded: its name and directory, the user's files plus overlay (when
// not ""), and the profiles and env files the user gave.
func ProjectArgs(p *Project, overlay string) []string {
	args := []string{"--project-name", p.Name, "--project-directory", p.Dir}
	for _, f := range p.Files {
		args = append(args, "--file", f)
	}
	if overlay != "" {
		args = append(args, "--file", overlay)
	}
	for _, pr := range p.Profiles {
		args = append(args, "--profile", pr)
	}
	for _, e := range p.EnvFiles {
		args = append(args, "--env-file", e)
	}
	return args
}

// Stdio are the streams the compose child uses.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Run runs compose with args and returns its exit code. The child shares the
// terminal (Ctrl-C reaches it directly, as it would reach compose run by
// hand); SIGTERM and SIGHUP sent to devmtls are passed on, so compose can stop
// its containers gracefully. ctx is not used to kill compose: cutting it off
// mid-way would leave a half-updated project.
func (r *Runtime) Run(ctx context.Context, args []string, stdio Stdio) (int, error) {
	cmd := exec.Command(r.Command[0], append(r.Command[1:], args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", r, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal()), nil
				}
				return exitErr.ExitCode(), nil
			}
			if err != nil {
				return 0, fmt.Errorf("run %s: %w", r, err)
			}
			return 0, nil
		}
	}
}
