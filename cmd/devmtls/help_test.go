package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
)

// commandsWithoutExamples need no Example: the root and the groupings whose
// subcommands carry the examples. Every other command a user types has one.
var commandsWithoutExamples = []string{"devmtls", "devmtls ide", "devmtls completion"}

// TestHelpFollowsOneStyle walks every command's help, as kubectl's own
// tests walk its commands: a Short under 60 characters starting with a
// capital and without a final period, no usage line listing flags twice, an
// Example for every command a user runs, and each command of the root in a
// group.
func TestHelpFollowsOneStyle(t *testing.T) {
	root := newRootCmd(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := c.CommandPath()
		short := c.Short
		switch {
		case short == "":
			t.Errorf("%s has no Short description", path)
		case len([]rune(short)) >= 60:
			t.Errorf("%s: Short is %d characters, want under 60: %q", path, len([]rune(short)), short)
		case !unicode.IsUpper([]rune(short)[0]) || strings.HasSuffix(short, "."):
			t.Errorf("%s: Short %q should start with a capital and end without a period", path, short)
		}
		// "[flags]" after "[COMPOSE FLAGS]", "[OPTIONS]" or "[--format F]".
		use := strings.ToLower(c.UseLine())
		if n := strings.Count(use, "flags") + strings.Count(use, "[options]") + strings.Count(use, "[-"); n > 1 {
			t.Errorf("%s: the usage line names flags %d times: %q", path, n, c.UseLine())
		}
		if c.Runnable() && !c.Hidden && c.Example == "" && !isCobraOwn(c) && !slices.Contains(commandsWithoutExamples, path) {
			t.Errorf("%s has no Example", path)
		}
		if c.Parent() == root && !c.Hidden && !isCobraOwn(c) && c.Name() != "version" && c.GroupID == "" {
			t.Errorf("%s is in no group of the root help", path)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// isCobraOwn tells the commands cobra adds (help, completion and its shells).
func isCobraOwn(c *cobra.Command) bool {
	for p := c; p != nil; p = p.Parent() {
		if p.Name() == "help" || p.Name() == "completion" {
			return true
		}
	}
	return false
}

// TestComposeCommandsDocumentComposeFlags: up, down and compose read their
// flags themselves, yet their help lists compose's project flags and points
// at compose's own help for the rest; up says its forwards run in the
// background.
func TestComposeCommandsDocumentComposeFlags(t *testing.T) {
	for _, args := range [][]string{{"up", "--help"}, {"down", "--help"}, {"compose", "--help"}} {
		out := mustCLI(t, args...)
		for _, want := range []string{"-f, --file", "-p, --project-name", "--profile", "--env-file", "--project-directory", "docker compose "} {
			if !strings.Contains(out, want) {
				t.Errorf("devmtls %s does not mention %q:\n%s", strings.Join(args, " "), want, out)
			}
		}
	}
	if out := mustCLI(t, "up", "--help"); !strings.Contains(out, "docker compose up --help") || !strings.Contains(out, "background devmtls process") {
		t.Errorf("devmtls up --help:\n%s", out)
	}
}
