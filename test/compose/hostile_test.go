package composetest

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/internal/testbin"
	"github.com/devmtls/devmtls/internal/testenv"
)

// hostileProject is the compose file of every hostile clone: a service with
// the default copies and one with a postgres copy, so every directory devmtls
// writes is in play.
const hostileProject = `services:
  api:
    image: devmtls-hostile-never-pulled
  db:
    image: devmtls-hostile-never-pulled
    x-devmtls:
      formats: [postgres]
`

// hostileCase is an environment directory as a cloned repository can commit
// it (links are stored by git), or as a clone on a shared machine can find it.
type hostileCase struct {
	name string
	// commit creates entries under repo (the repository being committed);
	// canary is the directory outside that must stay untouched, and
	// relCanary the path to it relative to the clone's .devmtls directory.
	commit func(t *testing.T, repo, canary, relCanary string)
	// afterClone changes the clone (ownership and modes are not committed).
	afterClone func(t *testing.T, clone string)
	// refused is the path the refusal must name, relative to the clone.
	refused string
	// fix is what the refusal must tell the user to do.
	fix string
}

func link(t *testing.T, repo, name, target string) {
	t.Helper()
	p := filepath.Join(repo, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostileCases are the links of issue 13, each as a committed file, and the
// directories another user could have filled.
func hostileCases() []hostileCase {
	linkTo := func(name string, target func(canary, rel string) string) func(*testing.T, string, string, string) {
		return func(t *testing.T, repo, canary, rel string) { link(t, repo, ".devmtls/"+name, target(canary, rel)) }
	}
	abs := func(canary, _ string) string { return canary }
	const rmFix = "remove it with `rm "
	return []hostileCase{
		{name: "environment directory", commit: func(t *testing.T, repo, canary, _ string) { link(t, repo, ".devmtls", canary) },
			refused: ".devmtls", fix: rmFix},
		{name: "compose", commit: linkTo("compose", abs), refused: ".devmtls/compose", fix: rmFix},
		{name: "compose relative", commit: linkTo("compose", func(_, rel string) string { return rel }), refused: ".devmtls/compose", fix: rmFix},
		{name: "service directory", commit: linkTo("compose/api", abs), refused: ".devmtls/compose/api", fix: rmFix},
		{name: "mounted directory", commit: linkTo("compose/db/postgres", abs), refused: ".devmtls/compose/db/postgres", fix: rmFix},
		{name: "services", commit: linkTo("services", abs), refused: ".devmtls/services", fix: rmFix},
		{name: "lock", commit: linkTo(".lock", func(c, _ string) string { return filepath.Join(c, "lock") }), refused: ".devmtls/.lock", fix: rmFix},
		{name: "forwards", commit: linkTo("forwards", abs), refused: ".devmtls/forwards", fix: rmFix},
		{name: "data outside", commit: linkTo("..data", func(_, rel string) string { return rel }), refused: ".devmtls/..data", fix: rmFix},
		{name: "cert to a file outside", commit: linkTo("cert", func(c, _ string) string { return filepath.Join(c, "precious") }),
			refused: ".devmtls/cert", fix: rmFix},
		{name: "state", commit: linkTo("state.json", func(c, _ string) string { return filepath.Join(c, "precious") }),
			refused: ".devmtls/state.json", fix: rmFix},
		{name: "overlay", commit: linkTo("compose.override.yaml", func(c, _ string) string { return filepath.Join(c, "precious") }),
			refused: ".devmtls/compose.override.yaml", fix: rmFix},
		{name: "another user's directory",
			commit: func(t *testing.T, repo, _, _ string) {
				writeFile(t, filepath.Join(repo, ".devmtls", ".gitignore"), "*\n")
			},
			afterClone: func(t *testing.T, clone string) {
				if os.Geteuid() != 0 {
					testenv.Missing(t, "root", "run the tests as root: only root can give a directory to another user")
				}
				if err := os.Chown(filepath.Join(clone, ".devmtls"), 4321, 4321); err != nil {
					t.Fatal(err)
				}
			},
			refused: ".devmtls", fix: "belongs to uid 4321"},
		{name: "world-writable directory",
			commit: func(t *testing.T, repo, _, _ string) {
				writeFile(t, filepath.Join(repo, ".devmtls", ".gitignore"), "*\n")
			},
			afterClone: func(t *testing.T, clone string) {
				if err := os.Chmod(filepath.Join(clone, ".devmtls"), 0o777); err != nil {
					t.Fatal(err)
				}
			},
			refused: ".devmtls", fix: "chmod 700"},
	}
}

// newCanary makes the directory outside the project that devmtls must never
// touch: files, a sub-directory, and a world-writable sticky directory (the
// issue saw one chmod'ed to 0700).
func newCanary(t *testing.T) string {
	t.Helper()
	c := filepath.Join(t.TempDir(), "canary")
	writeFile(t, filepath.Join(c, "precious"), "root:x:0:0:not a secret:/root:/bin/sh\n")
	writeFile(t, filepath.Join(c, "docs", "readme"), "docs\n")
	writeFile(t, filepath.Join(c, "api", "key"), "someone else's key\n")
	writeFile(t, filepath.Join(c, "photos", "cat.jpg"), "\xff\xd8\xff")
	if err := os.Chmod(c, 0o1777); err != nil {
		t.Fatal(err)
	}
	return c
}

// treeHash describes every entry under dir: kind, mode, modification time,
// content digest or link target.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v %d", rel, fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// hostileClone commits the case into a fresh repository and clones it, as a
// developer would; it returns the clone and the canary.
func hostileClone(t *testing.T, c hostileCase) (clone, canary string) {
	t.Helper()
	git := testenv.LookPath(t, "git", "apt-get install git")
	canary = newCanary(t)
	base := t.TempDir()
	repo, clone := filepath.Join(base, "repo"), filepath.Join(base, "clone")
	writeFile(t, filepath.Join(repo, "compose.yaml"), hostileProject)
	rel, err := filepath.Rel(filepath.Join(clone, ".devmtls"), canary)
	if err != nil {
		t.Fatal(err)
	}
	c.commit(t, repo, canary, rel)
	for _, args := range [][]string{
		{"init", "-q", repo},
		{"-C", repo, "add", "--force", "--all"},
		{"-C", repo, "-c", "user.name=attacker", "-c", "user.email=a@example.com", "commit", "-q", "-m", "helpful defaults"},
		{"clone", "-q", repo, clone},
	} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if c.afterClone != nil {
		c.afterClone(t, clone)
	}
	return clone, canary
}

// runIn runs the built devmtls in dir.
func runIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return testbin.Run(t, devmtlsBin, dir, env, "", args...)
}

// assertRefused checks the one-sentence refusal naming the path and the fix.
func assertRefused(t *testing.T, c hostileCase, clone, stdout, stderr string, code int) {
	t.Helper()
	msg := strings.TrimSpace(stderr)
	path := filepath.Join(clone, filepath.FromSlash(c.refused))
	if code != 1 || strings.Contains(msg, "\n") || !strings.Contains(msg, path+" ") || !strings.Contains(msg, c.fix) {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and one sentence naming %s and saying %q", code, stderr, path, c.fix)
	}
	if strings.TrimSpace(stdout) != "" {
		t.Errorf("stdout after a refusal: %q", stdout)
	}
}

// TestHostileEnvironmentsAreRefused runs the commands that write the
// environment in fresh clones of repositories that commit hostile links:
// each must refuse with one sentence, and the canary outside must stay
// byte-identical (content, mode, modification time). up and down need Docker:
// TestHostileEnvironmentsUpAndDown in security_test.go.
func TestHostileEnvironmentsAreRefused(t *testing.T) {
	commands := [][]string{
		{"compose", "overlay"},
		{"certs"},
		{"certs", "rotate"},
		{"certs", "--mode", "ca"},
		{"env"},
		{"certs", "show"},
	}
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			clone, canary := hostileClone(t, c)
			before, project := treeHash(t, canary), treeHash(t, clone)
			for _, args := range commands {
				stdout, stderr, code := runIn(t, clone, nil, args...)
				assertRefused(t, c, clone, stdout, stderr, code)
				if after := treeHash(t, canary); after != before {
					t.Fatalf("devmtls %s changed the canary outside the project:\nbefore:\n%s\nafter:\n%s", strings.Join(args, " "), before, after)
				}
				if after := treeHash(t, clone); after != project {
					t.Fatalf("devmtls %s wrote into the refused project:\nbefore:\n%s\nafter:\n%s", strings.Join(args, " "), project, after)
				}
			}
		})
	}
}
