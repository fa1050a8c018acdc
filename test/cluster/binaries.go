package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// KubernetesVersion is the Kubernetes release the control plane is built
// from; it must match the k8s.io/kubernetes requirement in go.mod.
const KubernetesVersion = "v1.37.2"

// ModulePath is this module's path; the binaries are built from inside it,
// where go.mod's replace directives make k8s.io/kubernetes buildable.
const ModulePath = "github.com/devmtls/devmtls/test/cluster"

// Binaries are the executables a cluster runs.
type Binaries struct {
	// APIServer, ControllerManager and Scheduler are built from
	// k8s.io/kubernetes at KubernetesVersion.
	APIServer         string
	ControllerManager string
	Scheduler         string
	// Kubelet is cmd/testkubelet of this module.
	Kubelet string
	// Etcd is an installed etcd 3.x (Debian's etcd-server by default).
	Etcd string
}

// BuildOptions controls EnsureBinaries.
type BuildOptions struct {
	// CacheDir overrides the binary cache root (default: DefaultCacheDir).
	CacheDir string
	// ModuleDir is this module's source directory (default: found from the
	// working directory or, failing that, from this file's build path).
	ModuleDir string
	// Logf receives progress messages; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultCacheDir is $DEVMTLS_TESTCLUSTER_CACHE if set, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/devmtls/testcluster. Binaries live in
// versioned subdirectories (k8s-v1.37.2/, testkubelet/<source hash>/).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("DEVMTLS_TESTCLUSTER_CACHE"); d != "" {
		return d, nil
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory: set DEVMTLS_TESTCLUSTER_CACHE or HOME: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "devmtls", "testcluster"), nil
}

// EnsureBinaries returns the cluster's executables, building what is not
// cached yet: kube-apiserver, kube-controller-manager and kube-scheduler
// from k8s.io/kubernetes (minutes, once per version), and the test kubelet
// from this module (seconds, once per source change). etcd is not built:
// see findEtcd.
func EnsureBinaries(ctx context.Context, opts BuildOptions) (*Binaries, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	root := opts.CacheDir
	if root == "" {
		var err error
		if root, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	etcd, err := findEtcd(ctx)
	if err != nil {
		return nil, err
	}
	b := &Binaries{Etcd: etcd}

	k8sDir := filepath.Join(root, "k8s-"+KubernetesVersion)
	b.APIServer = filepath.Join(k8sDir, "kube-apiserver")
	b.ControllerManager = filepath.Join(k8sDir, "kube-controller-manager")
	b.Scheduler = filepath.Join(k8sDir, "kube-scheduler")
	if allExist(b.APIServer, b.ControllerManager, b.Scheduler) {
		modDir, err := moduleDir(opts.ModuleDir)
		if err != nil {
			return nil, err
		}
		b.Kubelet, err = ensureKubelet(ctx, root, modDir, logf)
		return b, err
	}

	modDir, err := moduleDir(opts.ModuleDir)
	if err != nil {
		return nil, err
	}
	// One build at a time per cache: parallel test binaries (go test ./...)
	// would otherwise each spend minutes building the same thing.
	unlock, err := lockFile(ctx, filepath.Join(root, ".build.lock"), logf)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !allExist(b.APIServer, b.ControllerManager, b.Scheduler) {
		if err := buildKubernetes(ctx, root, k8sDir, modDir, logf); err != nil {
			return nil, err
		}
	}
	b.Kubelet, err = ensureKubelet(ctx, root, modDir, logf)
	return b, err
}

// buildKubernetes builds the three control-plane binaries in one go build
// (they share most packages) into a temporary directory and renames it into
// place, so an interrupted build never leaves a half-filled cache entry.
func buildKubernetes(ctx context.Context, root, k8sDir, modDir string, logf func(string, ...any)) error {
	tmp, err := os.MkdirTemp(root, ".tmp-k8s-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	const v = "k8s.io/component-base/version"
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", v + ".gitVersion=" + KubernetesVersion,
		"-X", v + ".gitMajor=" + majorMinor(KubernetesVersion, 0),
		"-X", v + ".gitMinor=" + majorMinor(KubernetesVersion, 1),
		"-X", v + ".gitTreeState=clean",
	}, " ")
	args := []string{"build", "-trimpath", "-ldflags", ldflags, "-o", tmp + "/",
		"k8s.io/kubernetes/cmd/kube-apiserver",
		"k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler",
	}
	logf("building kube-apiserver, kube-controller-manager, kube-scheduler %s (first time only; several minutes)", KubernetesVersion)
	start := time.Now()
	if err := goCommand(ctx, modDir, args...); err != nil {
		return fmt.Errorf("build Kubernetes %s: %w", KubernetesVersion, err)
	}
	info := fmt.Sprintf("kubernetes %s\ngo %s\nbuilt %s in %s\n", KubernetesVersion, runtime.Version(), time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(time.Second))
	if err := os.WriteFile(filepath.Join(tmp, "BUILDINFO"), []byte(info), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	_ = os.RemoveAll(k8sDir) // incomplete, or allExist would have passed
	if err := os.Rename(tmp, k8sDir); err != nil {
		return err
	}
	logf("built Kubernetes %s in %s into %s", KubernetesVersion, time.Since(start).Round(time.Second), k8sDir)
	return nil
}

// ensureKubelet builds cmd/testkubelet unless a binary built from the same
// sources exists. The key hashes the Go version, go.mod, go.sum and the
// non-test Go files under cmd/testkubelet and internal/ (the only packages
// of this module the kubelet may import), so editing the kubelet rebuilds
// it and editing the cluster package does not.
func ensureKubelet(ctx context.Context, root, modDir string, logf func(string, ...any)) (string, error) {
	key, err := sourceHash(modDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "testkubelet", key)
	bin := filepath.Join(dir, "testkubelet")
	if allExist(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".testkubelet.tmp%d", os.Getpid()))
	defer os.Remove(tmp)
	logf("building testkubelet (%s)", key)
	if err := goCommand(ctx, modDir, "build", "-trimpath", "-o", tmp, ModulePath+"/cmd/testkubelet"); err != nil {
		return "", fmt.Errorf("build testkubelet: %w", err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	pruneOld(filepath.Join(root, "testkubelet"), key)
	return bin, nil
}

// pruneOld removes kubelet builds of other sources that nobody has used
// for a day, so editing the kubelet does not grow the cache forever.
func pruneOld(dir, keep string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() == keep {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

func sourceHash(modDir string) (string, error) {
	files := []string{filepath.Join(modDir, "go.mod"), filepath.Join(modDir, "go.sum")}
	for _, tree := range []string{"cmd/testkubelet", "internal"} {
		err := filepath.WalkDir(filepath.Join(modDir, tree), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if name := d.Name(); !d.IsDir() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(modDir, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// goCommand runs the go tool in this module. GOWORK=off keeps a go.work in
// the repository from pulling the main module in (it must never see these
// replace directives); CGO_ENABLED=0 builds static binaries as Kubernetes'
// own release builds of these commands do, and needs no C toolchain.
func goCommand(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args[:1], " "), err, tail(out.String(), 4000))
	}
	return nil
}

// moduleDir finds this module's source: explicitly given, the module of
// the working directory (tests and `go run` run inside it), or the directory
// this file was compiled from.
func moduleDir(explicit string) (string, error) {
	candidates := []string{explicit}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Dir(file))
	}
	for _, d := range candidates {
		if d != "" && isThisModule(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("cannot find the source of %s: run from inside test/cluster (for example `cd test/cluster && go run ./cmd/testcluster ...`) or set BuildOptions.ModuleDir", ModulePath)
}

func isThisModule(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == ModulePath
		}
	}
	return false
}

// findEtcd picks the etcd to run: $DEVMTLS_TESTCLUSTER_ETCD, else etcd on
// PATH, else Debian's /usr/bin/etcd (package etcd-server). See the README
// for why Debian's 3.4 is good enough here.
func findEtcd(ctx context.Context) (string, error) {
	path := os.Getenv("DEVMTLS_TESTCLUSTER_ETCD")
	if path == "" {
		var err error
		if path, err = exec.LookPath("etcd"); err != nil {
			path = "/usr/bin/etcd"
		}
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("etcd not usable at %s (%v): install Debian's etcd-server (apt-get install etcd-server) or set DEVMTLS_TESTCLUSTER_ETCD to an etcd binary", path, err)
	}
	if !bytes.Contains(out, []byte("etcd Version: 3.")) {
		return "", fmt.Errorf("%s is not etcd 3.x: %s", path, firstLine(string(out)))
	}
	return path, nil
}

func allExist(paths ...string) bool {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// lockFile takes an exclusive flock, waiting (and saying so) if another
// process holds it.
func lockFile(ctx context.Context, path string, logf func(string, ...any)) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !said {
			logf("waiting for another process holding %s", path)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func majorMinor(version string, i int) string {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
