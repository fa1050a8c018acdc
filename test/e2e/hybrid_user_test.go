package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/internal/testenv"
)

// unprivilegedID is the uid and gid of the unprivileged user the hybrid shop
// runs as: no /etc/passwd entry (nothing on the machine changes), no
// capabilities, and the docker group as its only supplementary group — how
// most people run Docker on Linux.
const unprivilegedID = 64991

// unprivileged is how the test drops to that user: setpriv, as
// test/compose/preflight_test.go does.
type unprivileged struct {
	setpriv string
	// groups are the supplementary groups: the docker group's gid.
	groups string
}

// runAsUnprivileged makes every later devmtls command of the shop run as the
// unprivileged user, with a HOME, TMPDIR, DOCKER_CONFIG (holding the Compose
// plugin) and kubeconfig of its own, and the shop's services run as it too
// (SHOP_USER: a user cannot give its key to another uid). When the test does
// not run as root it runs unprivileged already, and nothing changes.
func (h *hybridShop) runAsUnprivileged(t *testing.T, kubeconfig string) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	setpriv := testenv.LookPath(t, "setpriv", "apt-get install util-linux")
	docker, err := user.LookupGroup("docker")
	if err != nil {
		testenv.Missing(t, "the docker group", "Docker Engine's packages create it (apt-get install docker.io)")
	}
	base := t.TempDir()
	// The test's temporary directories are root's alone; the user must reach
	// the shop's directory and its own.
	for _, d := range []string{filepath.Dir(base), base, filepath.Dir(h.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	own := func(p string, mode os.FileMode) {
		t.Helper()
		if err := os.Chown(p, unprivilegedID, unprivilegedID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	home, tmp, dockerConfig := filepath.Join(base, "home"), filepath.Join(base, "tmp"), filepath.Join(base, "docker")
	for _, d := range []string{home, tmp, dockerConfig, filepath.Join(dockerConfig, "cli-plugins")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		own(d, 0o700)
	}
	// The Compose plugin lives in root's home, which other users cannot
	// enter: the user gets a copy where its docker looks.
	out, err := exec.Command("docker", "info", "--format", `{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}`).Output()
	if plugin := strings.TrimSpace(string(out)); err == nil && plugin != "" {
		dst := filepath.Join(dockerConfig, "cli-plugins", "docker-compose")
		copyFile(t, plugin, dst)
		own(dst, 0o755)
	}
	kc := filepath.Join(base, "kubeconfig")
	copyFile(t, kubeconfig, kc)
	own(kc, 0o600)
	own(h.dir, 0o755)
	id := strconv.Itoa(unprivilegedID)
	// The shop's services run as the user, as make demo runs them for one.
	h.env = append(h.env, "HOME="+home, "TMPDIR="+tmp, "DOCKER_CONFIG="+dockerConfig, "KUBECONFIG="+kc,
		"SHOP_USER="+id+":"+id, "USER=", "LOGNAME=")
	h.user = &unprivileged{setpriv: setpriv, groups: docker.Gid}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// command runs name as the shop's user.
func (h *hybridShop) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if h.user == nil {
		return exec.CommandContext(ctx, name, args...)
	}
	id := strconv.Itoa(unprivilegedID)
	return exec.CommandContext(ctx, h.user.setpriv, append([]string{"--reuid=" + id, "--regid=" + id, "--groups=" + h.user.groups, "--", name}, args...)...)
}

// checkListeners: the forwards process listens on the host ports devmtls
// chose, as the user the shop runs as, without capabilities; and no process
// running the devmtls binary under test (the forwards process or any other
// devmtls command still running) listens on a port below 1024.
func (h *hybridShop) checkListeners(t *testing.T, pid int, addrs ...string) {
	t.Helper()
	ports, err := listeningPorts(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		_, p, _ := net.SplitHostPort(a)
		if n, _ := strconv.Atoi(p); !slices.Contains(ports, n) {
			t.Errorf("the forwards process %d does not listen on %s (it listens on %v)", pid, a, ports)
		}
	}
	procs := devmtlsProcesses(t)
	if !slices.Contains(procs, pid) {
		t.Errorf("the forwards process %d does not run %s (processes that do: %v)", pid, devmtlsBin, procs)
	}
	for _, p := range procs {
		ports, err := listeningPorts(p)
		if err != nil {
			// It ended since devmtlsProcesses looked; what it held is gone too.
			continue
		}
		for _, port := range ports {
			if port < 1024 {
				t.Errorf("devmtls process %d listens on port %d, below 1024", p, port)
			}
		}
	}
	if h.user == nil {
		return
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Uid:": strconv.Itoa(unprivilegedID), "CapEff:": "0000000000000000", "CapPrm:": "0000000000000000"}
	for _, line := range strings.Split(string(status), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && want[fields[0]] != "" {
			if fields[1] != want[fields[0]] {
				t.Errorf("the forwards process %d has %s, want %s", pid, line, want[fields[0]])
			}
			delete(want, fields[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("/proc/%d/status lacks %v", pid, want)
	}
}

// devmtlsProcesses are the live processes whose executable (/proc/PID/exe)
// is the devmtls binary under test. The relays are not among them: they run a
// copy of it inside their image, another file.
func devmtlsProcesses(t *testing.T) []int {
	t.Helper()
	bin, err := os.Stat(devmtlsBin)
	if err != nil {
		t.Fatal(err)
	}
	return runningProcesses(t, func(pid string) bool {
		// Processes that ended, or that this user may not inspect, fail here.
		exe, err := os.Stat(filepath.Join("/proc", pid, "exe"))
		return err == nil && os.SameFile(bin, exe)
	})
}

// runningProcesses are the running processes other than this test for which
// keep, given the /proc entry's name, is true.
func runningProcesses(t *testing.T, keep func(pid string) bool) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if keep(e.Name()) && processRunning(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// listeningPorts are the TCP ports process pid listens on: the LISTEN
// entries of /proc/PID/net/tcp and tcp6 whose socket inode is one of the
// process's open files. It fails when the process is gone.
func listeningPorts(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/net/%s: %q: %v", pid, table, sc.Text(), err)
			}
			ports = append(ports, int(port))
		}
	}
	return ports, nil
}

// processesMentioning are the processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []int {
	t.Helper()
	return runningProcesses(t, func(pid string) bool {
		cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		return err == nil && strings.Contains(string(cmdline), s)
	})
}

// vscodeEnv runs devmtls ide vscode and returns the environment of the Go
// configuration it wrote, ${workspaceFolder} resolved as VS Code does.
func (h *hybridShop) vscodeEnv(t *testing.T) map[string]string {
	t.Helper()
	out := h.mustRun(t, "ide", "vscode", "--lang", "go")
	if !strings.Contains(out, "PRICING_ADDR") {
		t.Fatalf("devmtls ide vscode did not name PRICING_ADDR:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(h.dir, ".vscode", "launch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var launch struct {
		Configurations []struct {
			Name string            `json:"name"`
			Env  map[string]string `json:"env"`
		} `json:"configurations"`
	}
	if err := json.Unmarshal(data, &launch); err != nil {
		t.Fatalf("launch.json: %v\n%s", err, data)
	}
	for _, c := range launch.Configurations {
		if c.Name == "devmtls: Go" {
			env := map[string]string{}
			for k, v := range c.Env {
				env[k] = strings.ReplaceAll(v, "${workspaceFolder}", h.dir)
			}
			return env
		}
	}
	t.Fatalf("launch.json has no configuration devmtls: Go:\n%s", data)
	return nil
}

// callPricingWithEnv runs curl, as the shop's user, with exactly env (and a
// PATH to find curl) against https://$PRICING_ADDR, over mTLS with the files
// env names.
func (h *hybridShop) callPricingWithEnv(t *testing.T, env map[string]string) {
	t.Helper()
	args := []string{"-i", "PATH=/usr/local/bin:/usr/bin:/bin"}
	for k, v := range env {
		args = append(args, k+"="+v)
	}
	args = append(args, "sh", "-c", `curl -sS --fail --max-time 60 --cert "$MTLS_CERT" --key "$MTLS_KEY" --cacert "$MTLS_CA" "https://$PRICING_ADDR/price?sku=cap"`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := h.command(ctx, "env", args...)
	cmd.Dir = h.dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"price_cents": 1500`) {
		t.Fatalf("a process with the IDE configuration's environment -> pricing: %v\n%s", err, out)
	}
}
