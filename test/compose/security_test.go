//go:build linux

package composetest

// End-to-end tests of issue 13 that need the Docker Engine: a reader in a
// container through the compose mount during 200 rotations, `up` and `down`
// in hostile clones, and `down` with a foreign PID in the forwards state.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/compose"
	"github.com/devmtls/devmtls/internal/testenv"
)

// pairReaderImage packs testdata/pairreader into a FROM scratch image.
func pairReaderImage(t *testing.T) string {
	t.Helper()
	bin := buildPairReader(t)
	ctxDir := filepath.Dir(bin)
	df := "FROM scratch\nCOPY pairreader /pairreader\nENTRYPOINT [\"/pairreader\"]\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "devmtls-e2e/pairreader:" + e2e.runID + "-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if out, err := docker(t, "build", "--quiet", "--tag", tag, ctxDir); err != nil {
		t.Fatalf("docker build %s: %v\n%s", tag, err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "--force", tag).Run() })
	return tag
}

// TestRotationReadersInAContainer runs the pair reader in a container that
// reads its credentials through the compose mount while the host rotates them
// 200 times and rewrites the service's copies, without recreating the
// container.
func TestRotationReadersInAContainer(t *testing.T) {
	requireDocker(t)
	image := pairReaderImage(t)
	testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
		rotationReadersInAContainer(t, image, line)
	})
}

func rotationReadersInAContainer(t *testing.T, image string, line testenv.ComposeLine) {
	dir := t.TempDir()
	// The copies belong to the container's user; only root may give them
	// away, so a normal user runs the reader as itself.
	user := "10001:10001"
	if os.Geteuid() != 0 {
		user = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	writeFile(t, filepath.Join(dir, "compose.yaml"), fmt.Sprintf(`services:
  reader:
    image: %s
    user: %q
    command: ["-dir", "/var/mtls"]
`, image, user))
	p := newE2EProject(t, dir, line)
	p.must("up", "-d")
	id := strings.TrimSpace(mustDocker(t, "ps", "-q", "--filter", "label="+compose.ProjectLabel+"="+p.name))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("want one reader container, got %q", id)
	}
	for i := 0; !strings.Contains(mustDocker(t, "logs", id), "reading"); i++ {
		if i == 300 {
			t.Fatalf("the reader did not start: %s", mustDocker(t, "logs", id))
		}
		time.Sleep(100 * time.Millisecond)
	}

	ctx := context.Background()
	proj, err := compose.Load(ctx, compose.LoadOptions{WorkingDir: dir, Environ: p.env})
	if err != nil {
		t.Fatal(err)
	}
	envDir := filepath.Join(dir, ".devmtls")
	store := &certs.Store{Dir: envDir}
	for i := range rotations {
		res, err := store.Rotate(ctx, proj.CertsRequest())
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		plan, err := compose.NewPlan(proj, res.Credentials, envDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if wr, err := plan.Write(ctx); err != nil || len(wr.Updated) != 1 {
			t.Fatalf("rotation %d: copies %+v, %v", i, wr, err)
		}
	}
	mustDocker(t, "stop", "--time", "20", id)
	logs := mustDocker(t, "logs", id)
	if now := strings.TrimSpace(mustDocker(t, "ps", "-aq", "--filter", "label="+compose.ProjectLabel+"="+p.name)); now != id {
		t.Fatalf("the reader container was replaced (%q, was %q)", now, id)
	}
	checkReaders(t, "container", parseReaderCounts(t, logs))
	gens, _ := filepath.Glob(filepath.Join(envDir, compose.CopiesDir, "reader", "mtls", "..2*"))
	if len(gens) != 1 {
		t.Errorf("generations left in the mounted directory: %v", gens)
	}
}

func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := docker(t, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestHostileEnvironmentsUpAndDown: up and down refuse hostile clones before
// compose runs, and leave the canary byte-identical. The cases are those of
// hostileCases that up or down would otherwise follow: the links of issue 13
// that deleted or overwrote files outside (the compose directory, absolute
// and relative, a service's directory, services/ of --mode ca) and the
// directories up and down open themselves.
func TestHostileEnvironmentsUpAndDown(t *testing.T) {
	requireDocker(t)
	want := map[string]bool{
		"environment directory": true,
		"compose":               true,
		"compose relative":      true,
		"service directory":     true,
		"mounted directory":     true,
		"services":              true,
		"forwards":              true,
		"lock":                  true,
	}
	for _, c := range hostileCases() {
		if !want[c.name] {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			for _, mode := range []certs.Mode{certs.ModeShared, certs.ModeCA} {
				t.Run(string(mode), func(t *testing.T) {
					testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
						hostileUpAndDown(t, inMode(c, mode), line)
					})
				})
			}
		})
	}
}

// inMode is c with the clone's compose file declaring mode in x-devmtls, so
// that in ca mode up would write each service's services/ directory too.
func inMode(c hostileCase, mode certs.Mode) hostileCase {
	if mode == certs.ModeShared {
		return c
	}
	commit := c.commit
	c.commit = func(t *testing.T, repo, canary, relCanary string) {
		writeFile(t, filepath.Join(repo, "compose.yaml"), hostileProject+"x-devmtls:\n  mode: "+string(mode)+"\n")
		commit(t, repo, canary, relCanary)
	}
	return c
}

func hostileUpAndDown(t *testing.T, c hostileCase, line testenv.ComposeLine) {
	clone, canary := hostileClone(t, c)
	p := newE2EProject(t, clone, line)
	before := treeHash(t, canary)
	for _, args := range [][]string{{"up", "-d"}, {"down"}} {
		stdout, stderr, code := p.devmtls(args...)
		assertRefused(t, c, clone, stdout, stderr, code)
		if after := treeHash(t, canary); after != before {
			t.Fatalf("devmtls %s changed the canary:\nbefore:\n%s\nafter:\n%s", strings.Join(args, " "), before, after)
		}
		if left := p.leftovers(); left != "" {
			t.Fatalf("devmtls %s created containers or networks: %s", strings.Join(args, " "), left)
		}
	}
}

// TestDownLeavesForeignProcessesAlone: a forwards state naming a process
// devmtls did not start (as a cloned repository or a stale file can) never
// gets that process signalled.
func TestDownLeavesForeignProcessesAlone(t *testing.T) {
	requireDocker(t)
	flock := testenv.LookPath(t, "flock", "apt-get install util-linux")
	for _, lockHeld := range []bool{false, true} {
		t.Run(fmt.Sprintf("lock held %v", lockHeld), func(t *testing.T) {
			testenv.ForEachCompose(t, func(t *testing.T, line testenv.ComposeLine) {
				downLeavesForeignProcessAlone(t, flock, lockHeld, line)
			})
		})
	}
}

func downLeavesForeignProcessAlone(t *testing.T, flock string, lockHeld bool, line testenv.ComposeLine) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "compose.yaml"), hostileProject)
	p := newE2EProject(t, dir, line)
	p.must("certs")
	fwd := filepath.Join(dir, ".devmtls", "forwards")
	if err := os.MkdirAll(fwd, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := startBackground(t, exec.Command("sleep", "120"))
	if lockHeld {
		// Another program holds the lock; the state names the
		// victim with its real start time.
		startBackground(t, exec.Command(flock, "--exclusive", filepath.Join(fwd, "lock"), "sleep", "120"))
		waitLocked(t, filepath.Join(fwd, "lock"))
	}
	state, _ := json.Marshal(map[string]any{"pid": victim.Pid, "start": procStart(t, victim.Pid), "env_dir": filepath.Join(dir, ".devmtls"), "spec_hash": "00"})
	if err := os.WriteFile(filepath.Join(fwd, "state.json"), state, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := p.devmtls("down")
	if lockHeld {
		if code != 1 || !strings.Contains(stderr, fmt.Sprintf("left process %d alone", victim.Pid)) {
			t.Errorf("down: exit %d, stderr %s; want it to say it left the process alone", code, stderr)
		}
	} else if found := fmt.Sprintf("so process %d, which %s names, was left alone", victim.Pid, filepath.Join(fwd, "state.json")); code != 0 || !strings.Contains(stderr, "no forwards process runs for ") || !strings.Contains(stderr, found) {
		t.Errorf("down: exit %d, stderr %s; want exit 0 and it to say that no forwards process runs and %s", code, stderr, found)
	}
	time.Sleep(200 * time.Millisecond)
	if victim.Signal(syscall.Signal(0)) != nil {
		t.Fatal("down killed a process it did not start")
	}
}

// startBackground starts cmd, killed when the test ends.
func startBackground(t *testing.T, cmd *exec.Cmd) *os.Process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd.Process
}

// procStart is field 22 of /proc/PID/stat, the process's start time.
func procStart(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return fields[19]
}

// waitLocked waits until some process holds a lock on lockFile's inode, as
// /proc/locks shows.
func waitLocked(t *testing.T, lockFile string) {
	t.Helper()
	for range 300 {
		var st syscall.Stat_t
		if syscall.Stat(lockFile, &st) == nil {
			data, _ := os.ReadFile("/proc/locks")
			if strings.Contains(string(data), fmt.Sprintf(":%d ", st.Ino)) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s was never locked", lockFile)
}
