package devenv

import (
	"path/filepath"
	"testing"
)

func TestResolveDirForProject(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	env := func(k string) (string, bool) {
		if k == EnvDir {
			return "/from/env", true
		}
		return "", false
	}
	for _, tc := range []struct {
		flag, project string
		env           Lookup
		want          string
	}{
		{"", "/src/shop", none, "/src/shop/.devmtls"},
		{"", "", none, "/cwd/.devmtls"},
		{"rel", "/src/shop", none, "/cwd/rel"},
		{"", "/src/shop", env, "/from/env"},
		{"/flag", "/src/shop", env, "/flag"},
	} {
		if got := ResolveDirForProject(tc.flag, "/cwd", tc.env, tc.project); got != filepath.FromSlash(tc.want) {
			t.Errorf("flag %q project %q: %s, want %s", tc.flag, tc.project, got, tc.want)
		}
	}
}
