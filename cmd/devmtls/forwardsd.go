package main

import (
	"github.com/devmtls/devmtls/hybrid"
	"github.com/spf13/cobra"
)

// newForwardsDaemonCmd is the background process `devmtls up` starts for a
// project's x-devmtls.forwards; users never type it.
func newForwardsDaemonCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    hybrid.DaemonCommand,
		Short:  "Serve the declared forwards (started by devmtls up)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			dir, err := g.envDir()
			if err != nil {
				return err
			}
			return hybrid.Run(c.Context(), dir, g.stderr)
		},
	}
}
