package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Positional-argument validators. Each returns a usage error (exit code 2)
// whose one sentence names the command and what to type instead, so no caller
// ever has to recognise cobra's own messages by their text. Every command
// sets one of them as its Args (TestEveryCommandRejectsBadArgs checks it).

// noArgs rejects positional arguments. On a command that also has
// subcommands (devmtls certs) the argument was probably meant as one, so the
// message suggests the nearest.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := ""
	if c.HasAvailableSubCommands() {
		hint = suggest(c, args[0])
	}
	return usageErrorf("%s takes no arguments, got %q%s (see '%s --help')", c.CommandPath(), args[0], hint, c.CommandPath())
}

// exactArgs accepts exactly n positional arguments.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s, got %d: use '%s' (see '%s --help')", c.CommandPath(), plural(n, "argument"), len(args), c.UseLine(), c.CommandPath())
		}
		return nil
	}
}

// minArgs accepts n or more positional arguments.
func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("%s needs at least %s, got %d: use '%s' (see '%s --help')", c.CommandPath(), plural(n, "argument"), len(args), c.UseLine(), c.CommandPath())
		}
		return nil
	}
}

// passArgs accepts anything: for the commands whose arguments belong to the
// compose command devmtls runs, which judges them itself.
func passArgs(*cobra.Command, []string) error { return nil }

// subcommandArgs is for a command that only groups subcommands (or runs
// itself without arguments): an argument that is no subcommand is reported
// as one, with cobra's "did you mean" suggestions. Cobra finds the
// subcommand before validating, so any argument that gets here is unknown.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return usageErrorf("unknown command %q for %q%s (see '%s --help')", args[0], c.CommandPath(), suggest(c, args[0]), c.CommandPath())
}

// suggest is ": did you mean "x"?" when one of c's subcommands is close to
// arg (cobra's suggestions), else ": use one of a, b, c".
func suggest(c *cobra.Command, arg string) string {
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only for its own message
	}
	if s := c.SuggestionsFor(arg); len(s) > 0 {
		for i := range s {
			s[i] = strconv.Quote(s[i])
		}
		return ": did you mean " + strings.Join(s, " or ") + "?"
	}
	if names := subcommandNames(c); len(names) > 0 {
		return ": use one of " + strings.Join(names, ", ")
	}
	return ""
}

// subcommandNames lists c's subcommands a user can type.
func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}

// helpWhenBare runs a grouping command given no subcommand: it prints its help.
func helpWhenBare(c *cobra.Command, _ []string) error { return c.Help() }

// argsAreUsageErrors makes every positional-argument error in the tree under
// c a usage error naming its command, whoever wrote the validator: cobra's
// own (completion's NoArgs) and any command still using cobra.MinimumNArgs.
// An error from an Args validator is a usage error by where it comes from.
// A command that only groups others (cobra's completion) refuses an unknown
// subcommand with subcommandArgs: cobra would print its help and exit 0.
func argsAreUsageErrors(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args, c.RunE = subcommandArgs, helpWhenBare
	}
	if v := c.Args; v != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			err := v(c, args)
			if err == nil || isUsageError(err) {
				return err
			}
			return usageErrorf("%s: %v (see '%s --help')", c.CommandPath(), err, c.CommandPath())
		}
	}
	for _, s := range c.Commands() {
		argsAreUsageErrors(s)
	}
}

// plural is "1 argument", "2 arguments".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
