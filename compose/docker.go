package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Docker is a connection to the Docker Engine API.
//
// It uses github.com/moby/moby/client, the maintained successor of
// github.com/docker/docker/client. Its MinAPIVersion is 1.40, so API-version
// negotiation works down to the Engine 20.10 (API 1.41) that Debian 12 ships.
type Docker struct {
	c *client.Client
	// Host is the daemon address (DOCKER_HOST or the default socket).
	Host string
	// APIVersion is the negotiated API version.
	APIVersion string
}

// ConnectDocker reaches the daemon named by the environment (DOCKER_HOST,
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION) and negotiates the
// API version, with one /_ping. Its errors are one sentence saying what to
// install or start.
func ConnectDocker(ctx context.Context) (*Docker, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("configure the Docker client from DOCKER_HOST and friends: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, dockerError(c.DaemonHost(), err)
	}
	return &Docker{c: c, Host: c.DaemonHost(), APIVersion: c.ClientVersion()}, nil
}

// ServerVersion returns the Engine's version, e.g. "20.10.24". It costs the
// daemon tens of milliseconds (it asks containerd and runc), so only status
// asks for it.
func (d *Docker) ServerVersion(ctx context.Context) (string, error) {
	v, err := d.c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("read the Docker Engine version: %w", err)
	}
	return v.Version, nil
}

// Close releases the connection.
func (d *Docker) Close() error { return d.c.Close() }

// DockerUnavailableError is the reason devmtls cannot use Docker, in one
// sentence that says what to install or start.
type DockerUnavailableError struct {
	Reason string
	Err    error
}

func (e *DockerUnavailableError) Error() string { return e.Reason }

// Unwrap returns the client's error.
func (e *DockerUnavailableError) Unwrap() error { return e.Err }

func dockerError(host string, err error) error {
	msg := err.Error()
	switch {
	case client.IsErrConnectionFailed(err) && strings.Contains(msg, "permission denied"):
		return &DockerUnavailableError{Err: err, Reason: fmt.Sprintf(
			"permission denied on the Docker daemon socket %s: add your user to the docker group (sudo usermod -aG docker $USER, then log in again) or run devmtls with sudo", host)}
	case client.IsErrConnectionFailed(err) || errors.Is(err, os.ErrNotExist):
		if _, lookErr := exec.LookPath("docker"); lookErr != nil && host == client.DefaultDockerHost {
			return &DockerUnavailableError{Err: err, Reason: "Docker is not installed: install Docker Engine (https://docs.docker.com/engine/install/, or your distribution's docker.io package) and start it"}
		}
		return &DockerUnavailableError{Err: err, Reason: fmt.Sprintf(
			"the Docker daemon is not running at %s: start it (sudo systemctl start docker, or open Docker Desktop)", host)}
	case errors.Is(err, context.DeadlineExceeded):
		return &DockerUnavailableError{Err: err, Reason: fmt.Sprintf("the Docker daemon at %s did not answer within 10s: check that it is healthy (docker info)", host)}
	}
	return &DockerUnavailableError{Err: err, Reason: fmt.Sprintf("cannot use the Docker daemon at %s: %v", host, err)}
}

// Container is one of a project's containers as the Engine reports it.
type Container struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Service string            `json:"service"`
	State   string            `json:"state"`
	Status  string            `json:"status"`
	Labels  map[string]string `json:"-"`
	Mounts  []ContainerMount  `json:"mounts"`
}

// ContainerMount is one mount of a container.
type ContainerMount struct {
	Type        string `json:"type"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only"`
}

// The labels Compose (v1 and v2) puts on every container it creates.
const (
	ProjectLabel = "com.docker.compose.project"
	ServiceLabel = "com.docker.compose.service"
	OneoffLabel  = "com.docker.compose.oneoff"
)

// ProjectContainers lists every container (running or not) of the compose
// project, by Compose's labels, sorted by service then name. One-off
// containers (compose run) are included.
func (d *Docker) ProjectContainers(ctx context.Context, project string) ([]Container, error) {
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", ProjectLabel+"="+project)})
	if err != nil {
		return nil, fmt.Errorf("list the containers of compose project %s: %w", project, err)
	}
	var out []Container
	for _, s := range res.Items {
		c := Container{ID: s.ID, Service: s.Labels[ServiceLabel], State: string(s.State), Status: s.Status, Labels: s.Labels}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, m := range s.Mounts {
			c.Mounts = append(c.Mounts, ContainerMount{Type: string(m.Type), Source: m.Source, Destination: m.Destination, ReadOnly: !m.RW})
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ProjectNetworks lists the names of the networks compose created for project.
func (d *Docker) ProjectNetworks(ctx context.Context, project string) ([]string, error) {
	res, err := d.c.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", "com.docker.compose.network").Add("label", ProjectLabel+"="+project)})
	if err != nil {
		return nil, fmt.Errorf("list the networks of compose project %s: %w", project, err)
	}
	var out []string
	for _, n := range res.Items {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out, nil
}
