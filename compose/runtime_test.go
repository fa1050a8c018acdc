package compose

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for out, want := range map[string]RuntimeVersion{
		"1.29.2\n":            {ComposeV1, "1.29.2"},
		"5.6.0\n":             {ComposeV2, "5.6.0"},
		"v2.30.3-desktop.1\n": {ComposeV2, "2.30.3-desktop.1"},
		"dev\n":               {ComposeV2, "dev"},
	} {
		if got, err := ParseVersion(out); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", out, got, err, want)
		}
	}
	for _, bad := range []string{"", "\n", "Docker Compose version v5.6.0"} {
		if got, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = %+v, want an error", bad, got)
		}
	}
}

// TestComposePluginDirs: the plugin is found where the docker CLI finds it:
// in DOCKER_CONFIG/cli-plugins and in the config's cliPluginsExtraDirs
// (where Docker Desktop lists its own), with this platform's file name.
func TestComposePluginDirs(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	plugin := func(dir string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, composePluginFile), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := t.TempDir()
	plugin(filepath.Join(cfg, "cli-plugins"))
	if !hasComposePlugin(env(map[string]string{"DOCKER_CONFIG": cfg})) {
		t.Errorf("no plugin found in %s/cli-plugins", cfg)
	}

	extraCfg, extra := t.TempDir(), filepath.Join(t.TempDir(), "Docker Desktop", "cli-plugins")
	plugin(extra)
	quoted := filepath.ToSlash(extra)
	if err := os.WriteFile(filepath.Join(extraCfg, "config.json"), []byte(`{"cliPluginsExtraDirs": ["/nowhere", "`+quoted+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	dirs := pluginDirs(env(map[string]string{"DOCKER_CONFIG": extraCfg}))
	if len(dirs) < 3 || dirs[0] != filepath.Join(extraCfg, "cli-plugins") || dirs[1] != "/nowhere" || dirs[2] != quoted {
		t.Errorf("plugin directories %q: want %s/cli-plugins, then the config's extra directories", dirs, extraCfg)
	}
	if !hasComposePlugin(env(map[string]string{"DOCKER_CONFIG": extraCfg})) {
		t.Errorf("no plugin found through cliPluginsExtraDirs %s", extra)
	}
	// A damaged config.json lists no extra directories, as for the CLI.
	if err := os.WriteFile(filepath.Join(extraCfg, "config.json"), []byte(`{"cliPluginsExtraDirs": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if dirs := pluginDirs(env(map[string]string{"DOCKER_CONFIG": extraCfg})); len(dirs) != 1+len(systemPluginDirs(env(nil))) {
		t.Errorf("with a damaged config.json: %q", dirs)
	}
}
