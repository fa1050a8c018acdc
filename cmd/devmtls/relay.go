package main

import (
	"fmt"

	"github.com/devmtls/devmtls/hybrid/relay"
	"github.com/spf13/cobra"
)

// newRelayCmd is what the relay containers of a hybrid environment run
// (their image holds this executable); users never type it.
func newRelayCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    relay.Command + " LISTEN=HOST:PORT...",
		Short:  "Relay a forward's ports to its host listener (internal)",
		Hidden: true,
		Args:   minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var routes []relay.Route
			for _, a := range args {
				r, err := relay.ParseRoute(a)
				if err != nil {
					return usageErrorf("%v", err)
				}
				routes = append(routes, r)
			}
			return relay.Serve(c.Context(), routes, func(format string, args ...any) {
				fmt.Fprintf(g.stderr, "devmtls relay: "+format+"\n", args...)
			})
		},
	}
}
