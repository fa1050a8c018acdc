package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ErrNotReady is what WaitReady's errors wrap when a container stopped or
// turned unhealthy instead of becoming ready.
var ErrNotReady = errors.New("a container did not become ready")

// WaitReady waits until every container of services (of every service when
// services is empty) is running and, where the image or compose file defines a
// healthcheck, healthy; what `docker compose up --wait` does, for
// docker-compose v1, which lacks it. A container that exits, dies or turns
// unhealthy ends the wait with an error naming it; ctx bounds the wait. It
// polls the Engine every interval.
func (d *Docker) WaitReady(ctx context.Context, project string, services []string, interval time.Duration) error {
	for {
		pending, err := d.notReady(ctx, project, services)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waited for %s of compose project %s to be running (and healthy, with a healthcheck): %w", strings.Join(pending, ", "), project, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// notReady lists the containers that are still on their way; a container
// that will not get there is an error.
func (d *Docker) notReady(ctx context.Context, project string, services []string) ([]string, error) {
	containers, err := d.ProjectContainers(ctx, project)
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, c := range containers {
		if c.Labels[OneoffLabel] == "True" || (len(services) > 0 && !slices.Contains(services, c.Service)) {
			continue
		}
		res, err := d.c.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return nil, fmt.Errorf("inspect container %s: %w", c.Name, err)
		}
		ready, err := containerReady(c.Name, res.Container.State)
		if err != nil {
			return nil, err
		}
		if !ready {
			pending = append(pending, c.Name)
		}
	}
	return pending, nil
}

// containerReady decides from a container's state: running (and healthy when
// it has a healthcheck) is ready, created, restarting or a starting
// healthcheck is not yet, anything else will not be.
func containerReady(name string, st *container.State) (bool, error) {
	if st == nil {
		return false, nil
	}
	switch st.Status {
	case container.StateRunning:
		if st.Health == nil || st.Health.Status == container.NoHealthcheck || st.Health.Status == container.Healthy {
			return true, nil
		}
		if st.Health.Status == container.Unhealthy {
			return false, fmt.Errorf("container %s is unhealthy: %w", name, ErrNotReady)
		}
		return false, nil
	case container.StateCreated, container.StateRestarting:
		return false, nil
	case container.StateExited:
		return false, fmt.Errorf("container %s exited (%d): %w", name, st.ExitCode, ErrNotReady)
	}
	return false, fmt.Errorf("container %s is %s: %w", name, st.Status, ErrNotReady)
}
