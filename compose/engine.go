package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// EngineInfo is the part of the Engine's GET /info answer devmtls uses to
// tell engines apart. The field names are the API's, so a recorded answer
// decodes into it as the live one is copied.
type EngineInfo struct {
	Name            string   `json:"Name"`
	ServerVersion   string   `json:"ServerVersion"`
	OSType          string   `json:"OSType"`
	OperatingSystem string   `json:"OperatingSystem"`
	Architecture    string   `json:"Architecture"`
	KernelVersion   string   `json:"KernelVersion"`
	SecurityOptions []string `json:"SecurityOptions"`
}

// Rootless reports whether the daemon runs in rootless mode: it then lists
// "name=rootless" among its security options.
func (i EngineInfo) Rootless() bool { return slices.Contains(i.SecurityOptions, "name=rootless") }

// DesktopOperatingSystem is what Docker Desktop (macOS, Windows, Linux)
// reports as its operating system: the engine runs in Docker's VM.
const DesktopOperatingSystem = "Docker Desktop"

// Info asks the Engine about itself.
func (d *Docker) Info(ctx context.Context) (EngineInfo, error) {
	res, err := d.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return EngineInfo{}, fmt.Errorf("ask the Docker Engine about itself (GET /info): %w", err)
	}
	i := res.Info
	return EngineInfo{Name: i.Name, ServerVersion: i.ServerVersion, OSType: i.OSType, OperatingSystem: i.OperatingSystem,
		Architecture: i.Architecture, KernelVersion: i.KernelVersion, SecurityOptions: i.SecurityOptions}, nil
}

// BridgeGateway is the default bridge network's gateway, where `host-gateway`
// leads on a rootful Linux engine. Engines that leave it out of the network's
// IPAM (20.10 does) give it to the bridge interface, which exists on this
// machine only when the engine runs here; with neither, the address is the
// zero Addr.
func (d *Docker) BridgeGateway(ctx context.Context) (netip.Addr, error) {
	res, err := d.c.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("inspect Docker's default bridge network: %w", err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.IsValid() && c.Gateway.Is4() {
			return c.Gateway, nil
		}
	}
	name := res.Network.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, nil
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, nil
}

// ImageExists reports whether the Engine has the image ref.
func (d *Docker) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := d.c.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

// ImportImage creates the image ref from a tar of its root filesystem, with
// changes (Dockerfile instructions such as ENTRYPOINT, USER, LABEL) applied
// to its configuration: what `docker import` does. No builder is involved.
func (d *Docker) ImportImage(ctx context.Context, ref string, rootfs io.Reader, changes []string) error {
	res, err := d.c.ImageImport(ctx, client.ImageImportSource{Source: rootfs, SourceName: "-"}, ref, client.ImageImportOptions{Changes: changes})
	if err != nil {
		return fmt.Errorf("import image %s: %w", ref, err)
	}
	defer res.Close()
	// The answer streams JSON messages; a failure mid-way is one of them.
	dec := json.NewDecoder(res)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("import image %s: %w", ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("import image %s: %s", ref, msg.Error)
		}
	}
}

// RemoveContainer stops and removes a container.
func (d *Docker) RemoveContainer(ctx context.Context, id string) error {
	if _, err := d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}
