package compose

import (
	"bytes"
	"context"
	"encoding/json"
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

// Implementation names a line of Docker Compose. devmtls drives both; users
// see them differ in container names (shop-orders-1 against shop_orders_1),
// in `up --wait` (the v2 line only) and in the output of config and ps.
type Implementation string

const (
	// ComposeV2 is the Go line: the `docker compose` CLI plugin (or its
	// standalone build), versions 2 and later (v5 today).
	ComposeV2 Implementation = "compose-v2"
	// ComposeV1 is the Python docker-compose 1.x, which Debian 12 ships.
	ComposeV1 Implementation = "compose-v1"
)

// RuntimeVersion is what a compose command reports about itself.
type RuntimeVersion struct {
	Implementation Implementation `json:"implementation"`
	// Version is as compose reports it, without a leading "v": "5.6.0",
	// "1.29.2", "2.30.3-desktop.1".
	Version string `json:"version"`
}

// ParseVersion reads the output of `compose version --short`. A 1.x version
// is docker-compose v1; anything else ("5.6.0", "v2.30.3-desktop.1", or
// "dev" from a build without a version stamp) is the v2 line, since v1 always
// reports its version.
func ParseVersion(out string) (RuntimeVersion, error) {
	v := strings.TrimPrefix(strings.TrimSpace(out), "v")
	if v == "" || strings.ContainsAny(v, " \n\t") {
		return RuntimeVersion{}, fmt.Errorf("compose version --short printed %q, not a version", strings.TrimSpace(out))
	}
	if strings.HasPrefix(v, "1.") {
		return RuntimeVersion{Implementation: ComposeV1, Version: v}, nil
	}
	return RuntimeVersion{Implementation: ComposeV2, Version: v}, nil
}

// Version asks compose which line and version it is (`version --short`). It
// costs a process start (tens of ms for the plugin, a few hundred for v1's
// Python), so only the commands that need it ask.
func (r *Runtime) Version(ctx context.Context) (RuntimeVersion, error) {
	cmd := exec.CommandContext(ctx, r.Command[0], append(r.Command[1:], "version", "--short")...)
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && len(exitErr.Stderr) > 0 {
			return RuntimeVersion{}, fmt.Errorf("%s version --short: %w: %s", r, err, bytes.TrimSpace(exitErr.Stderr))
		}
		return RuntimeVersion{}, fmt.Errorf("%s version --short: %w", r, err)
	}
	return ParseVersion(string(out))
}

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
// CLI looks for plugins, without running docker (which costs tens of ms): the
// config directory's cli-plugins, the cliPluginsExtraDirs of its config.json
// (Docker Desktop lists its own there), then the platform's system
// directories.
func hasComposePlugin(lookupEnv func(string) (string, bool)) bool {
	for _, d := range pluginDirs(lookupEnv) {
		if isPlugin(filepath.Join(d, composePluginFile)) {
			return true
		}
	}
	return false
}

// pluginDirs lists the directories the docker CLI searches for plugins, in
// its order.
func pluginDirs(lookupEnv func(string) (string, bool)) []string {
	var dirs []string
	cfg, ok := lookupEnv("DOCKER_CONFIG")
	if !ok || cfg == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfg = filepath.Join(home, ".docker")
		}
	}
	if cfg != "" {
		dirs = append(dirs, filepath.Join(cfg, "cli-plugins"))
		dirs = append(dirs, extraPluginDirs(filepath.Join(cfg, "config.json"))...)
	}
	return append(dirs, systemPluginDirs(lookupEnv)...)
}

// extraPluginDirs reads cliPluginsExtraDirs from the docker CLI's config
// file; a missing or unreadable file lists none, as for the CLI.
func extraPluginDirs(configFile string) []string {
	data, err := os.ReadFile(configFile)
	if err != nil {
		return nil
	}
	var cfg struct {
		CLIPluginsExtraDirs []string `json:"cliPluginsExtraDirs"`
	}
	if json.Unmarshal(data, &cfg) != nil {
		return nil
	}
	return cfg.CLIPluginsExtraDirs
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
