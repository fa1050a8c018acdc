package main

import (
	"github.com/devmtls/devmtls/hostenv"
	"github.com/spf13/cobra"
)

// envOptions backs `devmtls env`.
type envOptions struct {
	g      *globalOptions
	host   hostFlags
	format string

	parsed hostenv.Format
}

func newEnvCmd(g *globalOptions) *cobra.Command {
	o := &envOptions{g: g}
	cmd := &cobra.Command{
		Use:   "env [--format FORMAT]",
		Short: "Print the variables that point a host process at its dev credentials",
		Long: `Print the environment variables a service run on the host needs to find the
environment's dev credentials — the same names Compose services get:

  MTLS_CERT      certificate (PEM)
  MTLS_KEY       private key (PEM, 0600)
  MTLS_CA        trust anchor to verify peers with
  MTLS_KEY_CERT  key and certificate in one file (HAProxy)

With --postgres, libpq's PGSSLCERT, PGSSLKEY, PGSSLROOTCERT and
PGSSLMODE=verify-full. With --runtime-trust, NODE_EXTRA_CA_CERTS (adds to
Node.js's roots) and SSL_CERT_FILE, REQUESTS_CA_BUNDLE and
GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, which REPLACE the system roots: a process
with them set trusts only the dev CA and cannot reach public HTTPS hosts.

Credentials are created on first use; no Docker or compose file is needed.
Paths are absolute and quoted for the chosen shell. Formats: sh (default;
also bash, zsh), fish, powershell, cmd, dotenv, json.`,
		Example: `  eval "$(devmtls env)"
  devmtls env --format fish | source
  devmtls env --format powershell | Out-String | Invoke-Expression
  devmtls env --format dotenv --postgres > .env.mtls
  devmtls env --format json --service orders`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", string(hostenv.FormatSh), "output syntax: sh, bash, zsh, fish, powershell, cmd, dotenv or json")
	o.host.add(cmd)
	return cmd
}

func (o *envOptions) Validate() error {
	f, err := hostenv.ParseFormat(o.format)
	if err != nil {
		return usageErrorf("--format: %v", err)
	}
	o.parsed = f
	return nil
}

func (o *envOptions) Run(cmd *cobra.Command) error {
	_, vars, err := hostVars(cmd.Context(), o.g, o.host)
	if err != nil {
		return err
	}
	return hostenv.Render(o.g.stdout, o.parsed, vars)
}
