package main

import (
	"strings"

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
		Use:   "env",
		Short: "Print the variables that name the dev credential files",
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
Paths are absolute and quoted for the chosen shell. Formats: sh (also bash,
zsh), fish, powershell, cmd, dotenv, json. The default is sh, except on
Windows: there it follows the shell devmtls runs from (cmd for cmd.exe, sh
for Git Bash) and is powershell otherwise.`,
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
	cmd.Flags().StringVar(&o.format, "format", "", "output syntax: sh, bash, zsh, fish, powershell, cmd, dotenv or json (default sh; on Windows the calling shell's, else powershell)")
	o.host.add(cmd)
	return cmd
}

func (o *envOptions) Validate() error {
	if o.format == "" {
		o.parsed = defaultEnvFormat()
		return nil
	}
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

// formatForShell picks the output format for the shell that runs devmtls,
// named by its executable (a path, or just the name, with or without .exe, in
// any case), and fallback for anything that is not a shell it knows.
func formatForShell(exe string, fallback hostenv.Format) hostenv.Format {
	name := strings.ToLower(exe[strings.LastIndexAny(exe, `/\`)+1:])
	switch strings.TrimSuffix(name, ".exe") {
	case "cmd":
		return hostenv.FormatCmd
	case "powershell", "pwsh":
		return hostenv.FormatPowerShell
	case "bash":
		return hostenv.FormatBash
	case "zsh":
		return hostenv.FormatZsh
	case "fish":
		return hostenv.FormatFish
	case "sh", "dash", "ash", "ksh":
		return hostenv.FormatSh
	}
	return fallback
}
