package compose

import (
	"slices"
	"testing"
)

// TestWindowsPluginDirs: the docker CLI's system plugin directories on
// Windows, from ProgramData and ProgramFiles as Windows sets them, joined with
// Windows separators on whatever OS the test runs.
func TestWindowsPluginDirs(t *testing.T) {
	for _, c := range []struct {
		programData, programFiles string
		want                      []string
	}{
		{`C:\ProgramData`, `C:\Program Files`, []string{`C:\ProgramData\Docker\cli-plugins`, `C:\Program Files\Docker\cli-plugins`}},
		// Trailing separators and forward slashes, as filepath.Join reads them.
		{`D:\Data\`, `C:/Program Files/`, []string{`D:\Data\Docker\cli-plugins`, `C:\Program Files\Docker\cli-plugins`}},
		{`C:\`, `\\server\share`, []string{`C:\Docker\cli-plugins`, `\\server\share\Docker\cli-plugins`}},
		// An unset or empty variable adds no directory (never a relative one).
		{"", `C:\Program Files`, []string{`C:\Program Files\Docker\cli-plugins`}},
		{`C:\ProgramData`, "", []string{`C:\ProgramData\Docker\cli-plugins`}},
		{"", "", nil},
	} {
		if got := windowsPluginDirs(c.programData, c.programFiles); !slices.Equal(got, c.want) {
			t.Errorf("windowsPluginDirs(%q, %q) = %q, want %q", c.programData, c.programFiles, got, c.want)
		}
	}
}
