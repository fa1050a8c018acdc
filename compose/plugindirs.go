package compose

import "strings"

// windowsPluginDirs are the docker CLI's system-wide plugin directories on
// Windows (docker/cli's cli-plugins/manager), from the values of the
// ProgramData and ProgramFiles environment variables: Docker\cli-plugins
// under each, in that order, skipping an empty value. Docker Desktop installs
// its plugins under ProgramFiles. The paths are joined with Windows
// separators on every OS (plugins_windows.go only supplies the values), so
// this is tested on Linux too.
func windowsPluginDirs(programData, programFiles string) []string {
	var dirs []string
	for _, base := range []string{programData, programFiles} {
		if base == "" {
			continue
		}
		// As filepath.Join on Windows: either slash separates, and a
		// trailing one (C:\ or C:\ProgramData\) is not doubled.
		base = strings.TrimRight(strings.ReplaceAll(base, "/", `\`), `\`)
		dirs = append(dirs, base+`\Docker\cli-plugins`)
	}
	return dirs
}
