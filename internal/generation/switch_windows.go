//go:build windows

package generation

import (
	"errors"
	"io/fs"

	"github.com/devmtls/devmtls/internal/envdir"
)

// replaceLink puts the link tmp in place of the link name. Windows cannot
// rename a directory link over another, so, as the kubelet does there, the old
// link is removed first: for a moment ..data is missing and a reader retries.
func replaceLink(d *envdir.Dir, tmp, name string) error {
	if err := d.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return d.Rename(tmp, name)
}
