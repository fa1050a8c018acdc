package composetest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rotations is how many times the reader tests rotate the credentials under
// a reader.
const rotations = 200

// readerCounts is what testdata/pairreader reports per reader.
type readerCounts struct {
	Reads       int `json:"reads"`
	Mismatches  int `json:"mismatches"`
	Torn        int `json:"torn"`
	Retries     int `json:"retries"`
	Generations int `json:"generations"`
}

// buildPairReader builds testdata/pairreader as a static binary (it also runs
// in a FROM scratch image).
func buildPairReader(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pairreader")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/pairreader")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pairreader: %v\n%s", err, out)
	}
	return bin
}

// parseReaderCounts reads the JSON line pairreader prints last.
func parseReaderCounts(t *testing.T, out string) map[string]readerCounts {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var counts map[string]readerCounts
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &counts); err != nil {
		t.Fatalf("pairreader output %q: %v", out, err)
	}
	return counts
}

// checkReaders asserts what the generation switch guarantees: a reader that
// resolves ..data once, or reads key+cert, never sees a mismatched or torn
// pair; no file is ever torn. A reader opening cert and then key by their
// stable paths can fall on both sides of one switch (no rename makes two
// lookups atomic); its rate is logged, not asserted.
func checkReaders(t *testing.T, where string, counts map[string]readerCounts) {
	t.Helper()
	for _, name := range []string{"data", "keycert", "naive"} {
		c, ok := counts[name]
		if !ok || c.Reads == 0 {
			t.Fatalf("%s: reader %s did not read: %+v", where, name, counts)
		}
		if c.Torn != 0 {
			t.Errorf("%s: reader %s saw %d torn files in %d reads", where, name, c.Torn, c.Reads)
		}
		if c.Generations < 2 {
			t.Errorf("%s: reader %s saw %d generation(s): the rotations did not reach it", where, name, c.Generations)
		}
	}
	for _, name := range []string{"data", "keycert"} {
		if c := counts[name]; c.Mismatches != 0 {
			t.Errorf("%s: reader %s saw %d mismatched pairs in %d reads", where, name, c.Mismatches, c.Reads)
		}
	}
	n := counts["naive"]
	t.Logf("%s: %d rotations; ..data reader: %d reads, %d ENOENT retries, %d generations; key+cert reader: %d reads; "+
		"cert-then-key reader: %d mismatches in %d reads (%.4f%%)", where, rotations, counts["data"].Reads, counts["data"].Retries,
		counts["data"].Generations, counts["keycert"].Reads, n.Mismatches, n.Reads, 100*float64(n.Mismatches)/float64(n.Reads))
}

// TestRotationReadersOnTheHost reads the environment's files in a loop while
// devmtls certs rotate replaces them 200 times.
func TestRotationReadersOnTheHost(t *testing.T) {
	reader := buildPairReader(t)
	env := filepath.Join(t.TempDir(), ".devmtls")
	if _, stderr, code := runBin(t, nil, "certs", "--dir", env); code != 0 {
		t.Fatalf("devmtls certs: exit %d: %s", code, stderr)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(reader, "-dir", env, "-ready", ready)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for i := 0; ; i++ {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if i == 500 {
			t.Fatalf("pairreader did not start: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range rotations {
		if _, stderr, code := runBin(t, nil, "certs", "rotate", "--dir", env); code != 0 {
			t.Fatalf("rotation %d: exit %d: %s", i, code, stderr)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pairreader: %v\n%s", err, out.String())
	}
	checkReaders(t, "host", parseReaderCounts(t, out.String()))
	// Old generations are removed once the switch is done.
	gens, _ := filepath.Glob(filepath.Join(env, "..2*"))
	if len(gens) != 1 {
		t.Errorf("generations left after the rotations: %v", gens)
	}
}
