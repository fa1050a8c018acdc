package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// badArgs are the arguments that must be refused, for the commands where
// "one argument too many" is not the mistake (they take arguments).
var badArgs = map[string][]string{
	"devmtls":            {"certz"}, // an unknown command
	"devmtls certs":      {"rotat"},
	"devmtls ide":        {"vscod"},
	"devmtls exec":       {},
	"devmtls forward":    {},
	"devmtls relay":      {},
	"devmtls completion": {"bashh"},
}

// argsOfCompose are the commands whose positional arguments are compose's:
// compose judges them, so devmtls accepts any.
var argsOfCompose = []string{"devmtls up", "devmtls down", "devmtls compose"}

// TestEveryCommandRejectsBadArgs walks the command tree: every command
// refuses bad positional arguments with exit code 2 and a message naming
// the command, whatever wrote its validator.
func TestEveryCommandRejectsBadArgs(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		path := c.CommandPath()
		if c.Name() == "help" || slices.Contains(argsOfCompose, path) {
			return // help takes any topic; compose's arguments are compose's
		}
		args, ok := badArgs[path]
		if !ok {
			args = []string{"no-such-argument"}
		}
		t.Run(path, func(t *testing.T) {
			argv := append(strings.Fields(path)[1:], args...)
			out, errOut, code := cli(t, argv...)
			if code != exitUsage {
				t.Fatalf("devmtls %q: exit %d, want %d (a usage error)\n%s%s", argv, code, exitUsage, out, errOut)
			}
			if !strings.Contains(errOut, path) {
				t.Errorf("devmtls %q: the message does not name %q:\n%s", argv, path, errOut)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("devmtls %q: want a one-line message, got:\n%s", argv, errOut)
			}
		})
	}
	walk(newRootCmd(io.Discard, io.Discard))
}

// TestUnknownSubcommandSuggests checks the "did you mean" of a grouping
// command, which cobra only gives as text for the root.
func TestUnknownSubcommandSuggests(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certz"}, `did you mean "certs"?`},
		{[]string{"certs", "rotat"}, `did you mean "rotate"?`},
		{[]string{"ide", "vscod"}, `did you mean "vscode"?`},
		{[]string{"completion", "powershel"}, `did you mean "powershell"?`},
		{[]string{"certs", "zzzzzz"}, `use one of export, rotate, show`},
	} {
		_, errOut, code := cli(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("devmtls %q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestArgsValidatorsNameTheCommand checks the helpers' messages, which the
// commands without a test of their own (and forward) rely on.
func TestArgsValidatorsNameTheCommand(t *testing.T) {
	c := &cobra.Command{Use: "thing NAME"}
	(&cobra.Command{Use: "devmtls"}).AddCommand(c)
	for _, tc := range []struct {
		v    cobra.PositionalArgs
		args []string
		want string
	}{
		{exactArgs(1), nil, "devmtls thing takes 1 argument, got 0: use 'devmtls thing NAME'"},
		{exactArgs(2), []string{"a"}, "devmtls thing takes 2 arguments, got 1"},
		{minArgs(1), nil, "devmtls thing needs at least 1 argument, got 0"},
		{noArgs, []string{"x"}, `devmtls thing takes no arguments, got "x"`},
	} {
		err := tc.v(c, tc.args)
		if err == nil || !isUsageError(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
	if err := exactArgs(1)(c, []string{"a"}); err != nil {
		t.Errorf("exactArgs(1) refused one argument: %v", err)
	}
	if err := minArgs(1)(c, []string{"a", "b"}); err != nil {
		t.Errorf("minArgs(1) refused two arguments: %v", err)
	}
}
