package compose

import (
	"context"
	"slices"
)

// The credential states of a container in Status.
const (
	// CredsCurrent: every credentials mount is there and the container was
	// created with the current credentials.
	CredsCurrent = "current"
	// CredsStale: mounted, but created before the credentials changed; the
	// next `devmtls up` recreates it.
	CredsStale = "stale"
	// CredsMissing: the container lacks a credentials mount (it was started
	// without devmtls, or before the service opted in).
	CredsMissing = "missing"
	// CredsOptedOut: the service has x-devmtls: false.
	CredsOptedOut = "opted-out"
	// CredsUnknown: the environment has no credentials to compare with.
	CredsUnknown = "unknown"
)

// ServiceStatus is one service and its containers.
type ServiceStatus struct {
	Name    string `json:"name"`
	OptedIn bool   `json:"opted_in"`
	// Active is false when the service's profiles are not enabled.
	Active bool `json:"active"`
	// Mounts are the credential mounts the service should have.
	Mounts     []Mount           `json:"mounts,omitempty"`
	Containers []ContainerStatus `json:"containers"`
}

// ContainerStatus is one container and whether it has its credentials.
type ContainerStatus struct {
	Container
	// Credentials is one of CredsCurrent, CredsStale, CredsMissing,
	// CredsOptedOut, CredsUnknown.
	Credentials string `json:"credentials"`
	// MissingMounts are the expected credential mounts the container lacks.
	MissingMounts []Mount `json:"missing_mounts,omitempty"`
}

// ServiceStatuses matches the project's containers against what each service
// should have. plan may be nil when the environment has no credentials yet.
// Containers of services no longer in the project are reported under their
// service name with OptedIn false; the forwards' relays are not services of
// the user's.
func ServiceStatuses(ctx context.Context, d *Docker, p *Project, plan *Plan) ([]ServiceStatus, error) {
	containers, err := d.ProjectContainers(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	var out []ServiceStatus
	index := map[string]int{}
	for _, s := range p.Services {
		ss := ServiceStatus{Name: s.Name, OptedIn: true, Active: s.Active, Containers: []ContainerStatus{}}
		if plan != nil {
			for _, sp := range plan.Services {
				if sp.Service.Name == s.Name {
					ss.Mounts = sp.Mounts
				}
			}
		}
		index[s.Name] = len(out)
		out = append(out, ss)
	}
	for _, name := range p.OptedOut {
		index[name] = len(out)
		out = append(out, ServiceStatus{Name: name, Active: true, Containers: []ContainerStatus{}})
	}
	for _, c := range containers {
		if c.Labels[RelayLabel] != "" {
			continue // a forward's relay: status reports it with the forward
		}
		i, ok := index[c.Service]
		if !ok {
			index[c.Service] = len(out)
			i = len(out)
			out = append(out, ServiceStatus{Name: c.Service, Containers: []ContainerStatus{}})
		}
		out[i].Containers = append(out[i].Containers, containerStatus(c, out[i], plan))
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

func containerStatus(c Container, ss ServiceStatus, plan *Plan) ContainerStatus {
	cs := ContainerStatus{Container: c}
	if !ss.OptedIn {
		cs.Credentials = CredsOptedOut
		return cs
	}
	if plan == nil {
		cs.Credentials = CredsUnknown
		return cs
	}
	for _, m := range ss.Mounts {
		found := false
		for _, cm := range c.Mounts {
			if cm.Destination == m.Target && cm.Source == m.Source {
				found = true
			}
		}
		if !found {
			cs.MissingMounts = append(cs.MissingMounts, m)
		}
	}
	var digest string
	for _, sp := range plan.Services {
		if sp.Service.Name == ss.Name {
			digest = sp.Digest
		}
	}
	switch {
	case len(cs.MissingMounts) > 0:
		cs.Credentials = CredsMissing
	case c.Labels[CredentialsLabel] != digest:
		cs.Credentials = CredsStale
	default:
		cs.Credentials = CredsCurrent
	}
	return cs
}
