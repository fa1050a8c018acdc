package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/devmtls/devmtls/internal/testcreds"
	"github.com/tailscale/hujson"
)

// onPath runs name with args as an IDE would: found through PATH, where the
// built devmtls is.
func onPath(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	if !strings.Contains(os.Getenv("PATH"), filepath.Dir(devmtlsBin)) {
		t.Setenv("PATH", filepath.Dir(devmtlsBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEVMTLS_DIR=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func assertRenewed(t *testing.T, envDir string, expired *certs.Credentials, out string) {
	t.Helper()
	c, err := (&certs.Store{Dir: envDir}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint == expired.Fingerprint || !c.NotAfter.After(time.Now().Add(24*time.Hour)) || !strings.Contains(out, "Renewed dev credentials") {
		t.Fatalf("the launch step did not renew the expired credentials (valid until %s):\n%s", c.NotAfter, out)
	}
}

// TestIDELaunchStepRenewsExpiredCredentials runs the step each IDE runs
// before a launch, exactly as the files devmtls wrote describe it, against
// expired credentials: VS Code's preLaunchTask (a process task) and the
// JetBrains Shell Script configuration named as a before-launch step.
func TestIDELaunchStepRenewsExpiredCredentials(t *testing.T) {
	dir := polyglotProject(t)
	envDir := filepath.Join(dir, ".devmtls")
	mustCLI(t, "--dir", envDir, "ide", "vscode", "--project-directory", dir)

	launch, err := os.ReadFile(filepath.Join(dir, ".vscode", "launch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ld struct {
		Configurations []map[string]any `json:"configurations"`
	}
	std, _ := hujson.Standardize(bytes.Clone(launch))
	if err := json.Unmarshal(std, &ld); err != nil {
		t.Fatal(err)
	}
	label := ""
	for _, c := range ld.Configurations {
		if name := c["name"].(string); strings.HasPrefix(name, "devmtls: ") {
			if label, _ = c["preLaunchTask"].(string); label == "" {
				t.Fatalf("%s has no preLaunchTask", name)
			}
		}
	}
	tasks, err := os.ReadFile(filepath.Join(dir, ".vscode", "tasks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var td struct {
		Tasks []struct {
			Label   string   `json:"label"`
			Type    string   `json:"type"`
			Command string   `json:"command"`
			Args    []string `json:"args"`
			Options struct {
				Cwd string `json:"cwd"`
			} `json:"options"`
		} `json:"tasks"`
	}
	std, _ = hujson.Standardize(bytes.Clone(tasks))
	if err := json.Unmarshal(std, &td); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, task := range td.Tasks {
		if task.Label != label {
			continue
		}
		found = true
		if task.Type != "process" {
			t.Fatalf("task type %q", task.Type)
		}
		// VS Code substitutes ${workspaceFolder} in the command, the
		// arguments and the working directory.
		sub := func(s string) string { return strings.ReplaceAll(s, "${workspaceFolder}", dir) }
		var args []string
		for _, a := range task.Args {
			args = append(args, sub(a))
		}
		expired := testcreds.Expire(t, envDir)
		assertRenewed(t, envDir, expired, onPath(t, sub(task.Options.Cwd), task.Command, args...))
	}
	if !found {
		t.Fatalf("tasks.json has no task %q:\n%s", label, tasks)
	}

	mustCLI(t, "--dir", envDir, "ide", "jetbrains", "--project-directory", dir, "--lang", "go")
	run, err := os.ReadFile(filepath.Join(dir, ".run", "devmtls-go.run.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(run), `<option name="RunConfigurationTask" enabled="true" run_configuration_name="devmtls: certs" run_configuration_type="ShConfigurationType" />`) {
		t.Fatalf("no before-launch step:\n%s", run)
	}
	sh, err := os.ReadFile(filepath.Join(dir, ".run", "devmtls-certs.run.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var sd struct {
		Configuration struct {
			Name    string `xml:"name,attr"`
			Type    string `xml:"type,attr"`
			Options []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"option"`
		} `xml:"configuration"`
	}
	if err := xml.Unmarshal(sh, &sd); err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{}
	for _, o := range sd.Configuration.Options {
		opts[o.Name] = o.Value
	}
	if sd.Configuration.Name != "devmtls: certs" || sd.Configuration.Type != "ShConfigurationType" {
		t.Fatalf("renewal configuration: %+v", sd.Configuration)
	}
	// The IDE runs the script text with the interpreter in the working
	// directory, $PROJECT_DIR$ being the project.
	expired := testcreds.Expire(t, envDir)
	cwd := strings.ReplaceAll(opts["SCRIPT_WORKING_DIRECTORY"], "$PROJECT_DIR$", dir)
	assertRenewed(t, envDir, expired, onPath(t, cwd, opts["INTERPRETER_PATH"], "-c", opts["SCRIPT_TEXT"]))
}
