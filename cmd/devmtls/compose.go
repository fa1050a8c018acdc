package main

import (
	"slices"

	"github.com/spf13/cobra"
)

func newComposeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compose [OPTIONS] COMMAND [ARGS...]",
		Short: "Run any docker compose command with the overlay",
		Long: `Run a docker compose (or docker-compose) command on the same file set devmtls up
uses: your compose files plus .devmtls/compose.override.yaml. Compose's project
flags (-f, -p, --profile, --env-file, --project-directory) and global flags go
before COMMAND, as with compose; everything after COMMAND is compose's.

Commands that create or start containers (up, create, run, start, restart)
first bring the credentials and the services' copies up to date, like
devmtls up. Others (ps, logs, config, exec, down …) only use what is there.
COMMAND's own flags are compose's (see ` + "`docker compose COMMAND --help`" + `).
Compose's exit code is devmtls's exit code.

  devmtls compose overlay   prints the overlay (writing it and the copies first)`,
		Example: `  devmtls compose ps
  devmtls compose logs -f api
  devmtls compose config
  devmtls compose exec api sh
  devmtls compose -f compose.yaml -f compose.ci.yaml run --rm tests
  devmtls compose overlay`,
		DisableFlagParsing:    true,
		DisableFlagsInUseLine: true,
		Args:                  passArgs,
		RunE: func(c *cobra.Command, args []string) error {
			ca, err := parseComposeArgs(args, true)
			if err != nil {
				return err
			}
			if len(ca.rest) == 0 || ca.rest[0] == "--" {
				return c.Help()
			}
			if shown, err := composeHelpRequested(c, ca); shown {
				return err
			}
			o := &composeRunOptions{g: g, args: ca, sub: ca.rest[0], rest: ca.rest[1:]}
			o.prepare = slices.Contains(composeSubcommandsThatStart, o.sub)
			o.printOverlay = o.sub == "overlay"
			if o.printOverlay && len(o.rest) > 0 {
				return usageErrorf("devmtls compose overlay takes no arguments, got %q", o.rest[0])
			}
			if err := o.Complete(c.Context()); err != nil {
				return err
			}
			return o.Run(c.Context())
		},
	}
	overlay := &composeRunOptions{g: g, printOverlay: true}
	cmd.AddCommand(&cobra.Command{
		Use:   "overlay",
		Short: "Print the compose overlay devmtls up uses",
		Long: `Print the overlay devmtls up passes to compose after your files, writing it
and the services' copies of their credential files first.`,
		Example: `  devmtls compose overlay
  devmtls compose overlay -f compose.yaml -f compose.dev.yaml`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := overlay.Complete(c.Context()); err != nil {
				return err
			}
			return overlay.Run(c.Context())
		},
	})
	overlay.args.project.addTo(cmd.Commands()[0].Flags())
	documentProjectFlags(cmd)
	return cmd
}
