package main

import (
	"github.com/spf13/cobra"
)

func newDownCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Run docker compose down on the project devmtls up started",
		Long: `Stop and remove the project's containers and networks with ` + "`docker compose down`" + `
(or docker-compose), passing the same files as devmtls up: yours plus the
overlay. It never creates or renews credentials; the credentials stay in the
environment directory for the next devmtls up.

Compose's project flags work as in compose (-f, -p, --profile, --env-file,
--project-directory); every other flag goes to ` + "`compose down`" + ` (-v, --rmi local,
--remove-orphans, -t: see ` + "`docker compose down --help`" + `). It also stops the
background process serving the project's declared forwards.`,
		Example: `  devmtls down
  devmtls down -v --remove-orphans`,
		DisableFlagParsing:    true,
		DisableFlagsInUseLine: true,
		Args:                  passArgs,
		RunE:                  runComposeSubcommand(g, "down", false),
	}
	documentProjectFlags(cmd)
	return cmd
}
