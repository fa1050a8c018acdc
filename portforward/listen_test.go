package portforward

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/devmtls/devmtls/internal/testenv"
)

func TestListenSaysWhenAPortIsInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	f, _ := localForwarder(t, LocalTLS)
	err = f.listen(f.targets[0], PortSpec{Local: port, Remote: "443", Address: "127.0.0.1"})
	var inUse *PortInUseError
	if !errors.As(err, &inUse) || inUse.Port != port || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("got %v (%T); want a PortInUseError for port %d that is EADDRINUSE", err, err, port)
	}
	want := "local port " + strconv.Itoa(port) + " is already in use: pick another with LOCAL:443, or :443 for a free one"
	if err.Error() != want {
		t.Errorf("message %q\nwant %q", err, want)
	}
}

// unprivilegedHelperEnv marks the re-executed test binary that runs as an
// unprivileged user.
const unprivilegedHelperEnv = "DEVMTLS_TEST_UNPRIVILEGED_LISTEN"

// TestListenSaysWhyAPortNeedsPrivileges binds a port below
// net.ipv4.ip_unprivileged_port_start as a user who may not. Run as root, it
// runs itself again as nobody (setpriv), since root may bind any port.
func TestListenSaysWhyAPortNeedsPrivileges(t *testing.T) {
	first := firstUnprivilegedPort()
	if first <= 1 {
		testenv.Missing(t, "a privileged port range (net.ipv4.ip_unprivileged_port_start is "+strconv.Itoa(first)+")",
			"sysctl -w net.ipv4.ip_unprivileged_port_start=1024")
	}
	if os.Getuid() == 0 && os.Getenv(unprivilegedHelperEnv) == "" {
		runAsNobody(t)
		return
	}
	f, _ := localForwarder(t, LocalTLS)
	port := first - 1
	err := f.listen(f.targets[0], PortSpec{Local: port, Remote: "443", Address: "127.0.0.1"})
	var priv *PrivilegedPortError
	if !errors.As(err, &priv) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("binding port %d as uid %d: %v (%T); want a PrivilegedPortError that is EACCES", port, os.Getuid(), err, err)
	}
	for _, want := range []string{
		"local port " + strconv.Itoa(port) + " needs privileges",
		"ports below " + strconv.Itoa(first) + " (net.ipv4.ip_unprivileged_port_start)",
		":443 for a free one",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	t.Logf("uid %d: %v", os.Getuid(), err)
	if s := priv.suggestion(); s < first || s > 65535 {
		t.Errorf("suggested port %d, which needs privileges too", s)
	}
}

// runAsNobody runs this test again in a copy of the test binary that nobody
// can execute, as user nobody with no groups and no capabilities.
func runAsNobody(t *testing.T) {
	setpriv := testenv.LookPath(t, "setpriv", "apt-get install util-linux")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "devmtls-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "portforward.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test's own temporary directories must be writable by nobody.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
		bin, "-test.run=^TestListenSaysWhyAPortNeedsPrivileges$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), unprivilegedHelperEnv+"=1", "TMPDIR="+dir, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestListenSaysWhyAPortNeedsPrivileges") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
}
