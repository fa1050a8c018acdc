//go:build linux

package composetest

import (
	"strings"
	"testing"

	"github.com/devmtls/devmtls/internal/testenv"
)

// TestUpWaitReportsAServiceThatStops: `devmtls up --wait` fails, naming the
// container, when a service exits instead of running, with either Compose
// line (docker-compose v1 has no --wait; devmtls waits in its place).
func TestUpWaitReportsAServiceThatStops(t *testing.T) {
	t.Parallel()
	testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
		shopImage, _ := exampleImages(t)
		dir := writeFiles(t, map[string]string{"compose.yaml": `
services:
  api:
    image: ${SHOP_IMAGE}
    command: ["docs"]
  broken:
    image: ${SHOP_IMAGE}
    command: ["no-such-mode"]
`})
		p := newE2EProject(t, dir, line, "SHOP_IMAGE="+shopImage)
		_, stderr, code := p.devmtls("up", "--wait", "--wait-timeout", "60")
		if broken := line.ContainerName(p.name, "broken", 1); code == 0 || !strings.Contains(stderr, broken) || !strings.Contains(stderr, "exited") {
			t.Errorf("up --wait with a service that exits: exit %d, stderr\n%s\nwant a failure naming %s", code, stderr, broken)
		}
	})
}
