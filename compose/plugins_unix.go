//go:build !windows

package compose

import "os"

// composePluginFile is the Compose CLI plugin's file name.
const composePluginFile = "docker-compose"

// systemPluginDirs are the docker CLI's system-wide plugin directories on
// Linux and macOS (docker/cli's cli-plugins/manager).
func systemPluginDirs(func(string) (string, bool)) []string {
	return []string{"/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
		"/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins"}
}

// isPlugin reports whether path is an executable file.
func isPlugin(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
