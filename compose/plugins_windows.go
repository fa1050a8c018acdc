package compose

import (
	"os"
	"path/filepath"
)

// composePluginFile is the Compose CLI plugin's file name.
const composePluginFile = "docker-compose.exe"

// systemPluginDirs are the docker CLI's system-wide plugin directories on
// Windows (docker/cli's cli-plugins/manager); Docker Desktop installs its
// plugins in the second.
func systemPluginDirs(lookupEnv func(string) (string, bool)) []string {
	var dirs []string
	for _, env := range []string{"ProgramData", "ProgramFiles"} {
		if base, ok := lookupEnv(env); ok && base != "" {
			dirs = append(dirs, filepath.Join(base, "Docker", "cli-plugins"))
		}
	}
	return dirs
}

// isPlugin reports whether path is a regular file; Windows has no execute
// bit, the .exe name is what makes it runnable.
func isPlugin(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
