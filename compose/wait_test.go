package compose

import (
	"errors"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestContainerReady(t *testing.T) {
	health := func(s container.HealthStatus) *container.Health { return &container.Health{Status: s} }
	for _, c := range []struct {
		name  string
		state *container.State
		ready bool
		fails bool
	}{
		{"running, no healthcheck", &container.State{Status: container.StateRunning}, true, false},
		{"running, healthy", &container.State{Status: container.StateRunning, Health: health(container.Healthy)}, true, false},
		{"running, health starting", &container.State{Status: container.StateRunning, Health: health(container.Starting)}, false, false},
		{"running, unhealthy", &container.State{Status: container.StateRunning, Health: health(container.Unhealthy)}, false, true},
		{"created", &container.State{Status: container.StateCreated}, false, false},
		{"restarting", &container.State{Status: container.StateRestarting}, false, false},
		{"exited 0", &container.State{Status: container.StateExited}, false, true},
		{"dead", &container.State{Status: container.StateDead}, false, true},
		{"no state", nil, false, false},
	} {
		ready, err := containerReady("shop-orders-1", c.state)
		if ready != c.ready || (err != nil) != c.fails || (err != nil && !errors.Is(err, ErrNotReady)) {
			t.Errorf("%s: ready %v, err %v; want ready %v, failing %v", c.name, ready, err, c.ready, c.fails)
		}
	}
}
