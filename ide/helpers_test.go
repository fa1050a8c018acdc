package ide

import (
	"path/filepath"

	"github.com/devmtls/devmtls/certs"
)

func certsPaths(dir string) certs.FileSet {
	return certs.FileSet{Cert: filepath.Join(dir, "cert"), Key: filepath.Join(dir, "key"), CA: filepath.Join(dir, "ca"), KeyCert: filepath.Join(dir, "key+cert")}
}
