package relay

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Repository is the name of the relay images; the tag is the digest of the
// executable they hold, so one devmtls build makes one image, once.
const Repository = "devmtls-relay"

// ImageLabel marks relay images.
const ImageLabel = "dev.devmtls.relay-image"

// ExecutableEnv names a devmtls executable for the relay image when this one
// cannot run in the engine's containers (devmtls on macOS or Windows, or for
// another CPU): a Linux build for the engine's architecture, statically
// linked, as `make dist` builds them.
const ExecutableEnv = "DEVMTLS_RELAY_EXECUTABLE"

// Engine is the part of the Docker Engine API the image needs.
type Engine interface {
	ImageExists(ctx context.Context, ref string) (bool, error)
	ImportImage(ctx context.Context, ref string, rootfs io.Reader, changes []string) error
}

// goArch maps the architectures the Engine reports (GET /info's
// Architecture, uname's spelling) to Go's.
var goArch = map[string]string{
	"x86_64": "amd64", "amd64": "amd64",
	"aarch64": "arm64", "arm64": "arm64",
	"armv7l": "arm", "armhf": "arm",
	"i686": "386", "i386": "386",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}

// elfMachine is the ELF machine of an executable built for each GOARCH.
var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// Executable returns the devmtls executable to make the relay image of: this
// one (self) when it runs in the engine's containers — a Linux executable
// for the engine's architecture — else the one $DEVMTLS_RELAY_EXECUTABLE
// names, which must be such an executable.
func Executable(self, engineOS, engineArch string, getenv func(string) string) (string, error) {
	arch, ok := goArch[engineArch]
	if engineOS != "linux" || !ok {
		return "", fmt.Errorf("the Docker engine runs %s/%s containers; the relays of the forwards need Linux containers on a CPU Go builds for (switch Docker Desktop to Linux containers)", engineOS, engineArch)
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == arch {
		return self, nil
	}
	exe := getenv(ExecutableEnv)
	if exe == "" {
		return "", fmt.Errorf("the relays of the forwards run devmtls in Docker's linux/%s containers, and this devmtls is built for %s/%s: set %s to a devmtls built for linux/%s (make dist writes dist/devmtls_linux_%s; release archives hold it too)",
			arch, runtime.GOOS, runtime.GOARCH, ExecutableEnv, arch, arch)
	}
	if err := checkForeign(exe, arch); err != nil {
		return "", fmt.Errorf("%s=%s: %w", ExecutableEnv, exe, err)
	}
	return exe, nil
}

// checkForeign makes sure exe is a static Linux executable for arch: the
// host cannot tell which libraries another system's loader would need.
func checkForeign(exe, arch string) error {
	f, err := elf.Open(exe)
	if err != nil {
		return fmt.Errorf("not a Linux executable: %v", err)
	}
	defer f.Close()
	if f.Machine != elfMachine[arch] {
		return fmt.Errorf("built for %v, and Docker runs linux/%s containers; use the linux/%s build", f.Machine, arch, arch)
	}
	if interpreter(f) != "" {
		return errors.New("dynamically linked; use a static build (CGO_ENABLED=0, as make dist builds)")
	}
	return nil
}

// ImageRef is the relay image of the executable exe:
// devmtls-relay:<the first 16 hex digits of its SHA-256>.
func ImageRef(exe string) (string, error) {
	f, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("read the devmtls executable for the relay image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read the devmtls executable for the relay image: %w", err)
	}
	return Repository + ":" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// EnsureImage makes sure the relay image of exe exists, importing it when
// it does not; it returns the image's reference and whether it was made now.
func EnsureImage(ctx context.Context, eng Engine, exe string) (ref string, made bool, err error) {
	ref, err = ImageRef(exe)
	if err != nil {
		return "", false, err
	}
	ok, err := eng.ImageExists(ctx, ref)
	if err != nil || ok {
		return ref, false, err
	}
	files, err := imageFiles(exe)
	if err != nil {
		return "", false, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, files)) }()
	changes := []string{
		`ENTRYPOINT ["/devmtls"]`,
		`CMD ["` + Command + `"]`,
		"USER 65534:65534",
		"LABEL " + ImageLabel + "=1",
	}
	err = eng.ImportImage(ctx, ref, pr, changes)
	pr.CloseWithError(err) // ends writeRootfs if the import stopped early
	if err != nil {
		return "", false, fmt.Errorf("make the relay image: %w", err)
	}
	return ref, true, nil
}

// imageFile is one file of the image: its path in the image and where its
// content comes from (nil src: data).
type imageFile struct {
	path string
	src  string
	data []byte
	mode int64
}

// nsswitch makes the resolver read /etc/hosts (where host.docker.internal
// is) before asking DNS, as a distribution's default does.
const nsswitch = "hosts: files dns\n"

// imageFiles lists the image's content: the executable as /devmtls; when it
// is dynamically linked, its loader and the libraries it needs at the paths
// `ldd` gives (as the example's HAProxy image is made); and nsswitch.conf.
func imageFiles(exe string) ([]imageFile, error) {
	files := []imageFile{
		{path: "devmtls", src: exe, mode: 0o555},
		{path: "etc/nsswitch.conf", data: []byte(nsswitch), mode: 0o444},
	}
	libs, err := sharedLibraries(exe)
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		files = append(files, imageFile{path: strings.TrimPrefix(l, "/"), src: l, mode: 0o555})
	}
	return files, nil
}

// interpreter is the dynamic loader an ELF executable names, "" when static.
func interpreter(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			return string(bytes.TrimRight(b, "\x00"))
		}
	}
	return ""
}

// sharedLibraries are the files a dynamically linked exe needs to start:
// its loader and what `ldd` resolves; none for a static executable.
func sharedLibraries(exe string) ([]string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("read the devmtls executable for the relay image: %w", err)
	}
	interp := interpreter(f)
	f.Close()
	if interp == "" {
		return nil, nil
	}
	out, err := exec.Command("ldd", exe).Output()
	if err != nil {
		return nil, fmt.Errorf("devmtls is dynamically linked, and `ldd %s` failed (%v): install ldd (libc-bin), or use a static build of devmtls (CGO_ENABLED=0)", exe, err)
	}
	libs := append(parseLdd(out), interp)
	slices.Sort(libs)
	return slices.Compact(libs), nil
}

// parseLdd reads the absolute paths `ldd` resolves: "libc.so.6 =>
// /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and "/lib64/ld-linux-x86-64.so.2
// (0x…)"; the vDSO has no file.
func parseLdd(out []byte) []string {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 3 && fields[1] == "=>" && path.IsAbs(fields[2]):
			libs = append(libs, fields[2])
		case len(fields) >= 1 && path.IsAbs(fields[0]):
			libs = append(libs, fields[0])
		}
	}
	return libs
}

// writeRootfs writes the image's files as a tar, with their directories,
// owned by root.
func writeRootfs(w io.Writer, files []imageFile) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeFile(tw, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, f imageFile) error {
	if f.src == "" {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		_, err := tw.Write(f.data)
		return err
	}
	// Links are followed: the image holds the file itself at the path the
	// loader looks for.
	src, err := os.Open(filepath.Clean(f.src))
	if err != nil {
		return fmt.Errorf("relay image: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: fi.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}
