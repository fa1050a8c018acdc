package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time by the Makefile (-ldflags "-X main.version=… -X main.commit=…");
// they are never assigned at run time.
var (
	version = ""
	commit  = ""
)

// versionInfo is what `devmtls version` reports.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// currentVersion prefers the link-time values and falls back to what the Go
// toolchain recorded, so `go install …@v1.2.3` builds still say v1.2.3.
func currentVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v.Commit == "" {
				v.Commit = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

type versionOptions struct {
	g    *globalOptions
	json bool
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	o := &versionOptions{g: g}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Example: `  devmtls version
  devmtls version --json | jq -r .version`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return o.Run() },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func (o *versionOptions) Run() error {
	v := currentVersion()
	if o.json {
		return writeJSON(o.g.stdout, v)
	}
	_, err := fmt.Fprintf(o.g.stdout, "devmtls %s\ncommit: %s\ngo: %s %s\n", v.Version, v.Commit, v.GoVersion, v.Platform)
	return err
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
