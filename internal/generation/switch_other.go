//go:build !windows

package generation

import "github.com/devmtls/devmtls/internal/envdir"

// replaceLink renames the link tmp over the link name: one atomic step.
func replaceLink(d *envdir.Dir, tmp, name string) error { return d.Rename(tmp, name) }
