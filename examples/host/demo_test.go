package host

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testenv"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestDemo runs demo.sh as `make demo` will: a Go, a Python and a Node.js
// service started with `devmtls exec` calling each other over mTLS.
func TestDemo(t *testing.T) {
	for tool, pkg := range map[string]string{"bash": "bash", "python3": "python3", "node": "nodejs", "curl": "curl"} {
		testenv.LookPath(t, tool, "apt-get install "+pkg)
	}
	bin := filepath.Join(t.TempDir(), "devmtls")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/devmtls").CombinedOutput(); err != nil {
		t.Fatalf("build devmtls: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang bound
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "demo.sh")
	cmd.Env = append(os.Environ(), "DEVMTLS="+bin, "DEVMTLS_DIR="+filepath.Join(t.TempDir(), "env dir"),
		"INVENTORY_PORT="+freePort(t), "ORDERS_PORT="+freePort(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	for _, want := range []string{
		`storefront -> orders (as devmtls) -> inventory (as devmtls): {"espresso":12,"filter":40}`,
		"refused, as it should be",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
