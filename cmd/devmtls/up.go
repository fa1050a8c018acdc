package main

import (
	"github.com/spf13/cobra"
)

func newUpCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Run docker compose up with the dev credentials mounted",
		Long: `Make sure the environment has valid dev credentials for every compose service,
give each service its own copy of its credential files (owned by the container
user, keys 0600), write the overlay .devmtls/compose.override.yaml that mounts
them read-only and names them in MTLS_CERT, MTLS_KEY, MTLS_CA and MTLS_KEY_CERT,
then run ` + "`docker compose up`" + ` (or docker-compose) with your files plus the overlay.

Your compose files are never modified. Compose's project flags work as in
compose (-f, -p, --profile, --env-file, --project-directory, COMPOSE_FILE,
COMPOSE_PROJECT_NAME); every other flag and argument goes to ` + "`compose up`" + `
(-d, --build, --wait, --force-recreate …: see ` + "`docker compose up --help`" + `),
and compose's exit code is devmtls's exit code.

Forwards declared in x-devmtls.forwards (test-cluster services the containers
call by name) start before the services, in a background devmtls process, one
per environment (its pid, state and log in .devmtls/forwards/). With -d it
keeps running after up returns and a second up -d reuses it; devmtls down
stops it. A foreground up stops it when compose ends.

After ` + "`devmtls certs rotate`" + `, the next ` + "`devmtls up`" + ` recreates exactly the containers
whose credentials changed.

Settings live under x-devmtls in the compose files, at the top level (defaults)
and per service:

  x-devmtls:
    mode: shared            # or ca: a dev CA and one leaf per service
    names: [shop.local]     # extra certificate names
    mount_path: /var/mtls   # directory the files appear in
  services:
    api:
      user: "10001:10001"   # the key is owned by this uid (numeric user:)
    db-client:
      x-devmtls:
        formats: [postgres] # also /var/postgres-mtls/{cacert,cert,key} and PGSSL*
        user: "999:999"
    docs:
      x-devmtls: false      # no credentials`,
		Example: `  devmtls up -d
  devmtls up -f compose.yaml -f compose.dev.yaml --profile debug -d --build
  devmtls up -d api`,
		DisableFlagParsing:    true,
		DisableFlagsInUseLine: true,
		Args:                  passArgs,
		RunE:                  runComposeSubcommand(g, "up", true),
	}
	documentProjectFlags(cmd)
	return cmd
}
