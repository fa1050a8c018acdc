package ide

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tailscale/hujson"
)

// userTasks is a tasks.json as people keep it: comments, trailing commas,
// tasks of their own.
const userTasks = `// Build tasks.
{
  "version": "2.0.0",
  "tasks": [
    {
      "label": "build", // the usual
      "type": "shell",
      "command": "make",
    },
    /* a task of devmtls's, edited by the user */
  ],
}
`

func tasksByLabel(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, e := range standard(t, b)["tasks"].([]any) {
		task := e.(map[string]any)
		out[task["label"].(string)] = task
	}
	return out
}

func TestMergeTasksNewFile(t *testing.T) {
	spec := testSpec(t, "/p")
	out, added, updated, err := MergeTasks(nil, spec)
	if err != nil || !added || updated {
		t.Fatalf("added %v updated %v err %v", added, updated, err)
	}
	want := `{
    "version": "2.0.0",
    "tasks": [
        {
            "label": "devmtls: certs",
            "detail": "create or renew the dev credentials the devmtls launch configurations use",
            "type": "process",
            "command": "devmtls",
            "args": ["--dir", "${workspaceFolder}/.devmtls", "certs"],
            "options": {
                "cwd": "${workspaceFolder}"
            },
            "problemMatcher": [],
            "presentation": {
                "reveal": "silent"
            }
        }
    ]
}
`
	if string(out) != want {
		t.Errorf("new tasks.json:\n%s\nwant:\n%s", out, want)
	}
}

func TestMergeTasksKeepsUserContent(t *testing.T) {
	spec := testSpec(t, "/p")
	out, added, _, err := MergeTasks([]byte(userTasks), spec)
	if err != nil || !added {
		t.Fatalf("added %v, %v", added, err)
	}
	tasks := tasksByLabel(t, out)
	if tasks["build"]["command"] != "make" || len(tasks) != 2 {
		t.Errorf("tasks = %v", tasks)
	}
	for _, c := range []string{"// Build tasks.", "// the usual", "/* a task of devmtls's, edited by the user */"} {
		if !strings.Contains(string(out), c) {
			t.Errorf("lost comment %q:\n%s", c, out)
		}
	}
	again, added, updated, err := MergeTasks(out, spec)
	if err != nil || added || updated || !bytes.Equal(again, out) {
		t.Fatalf("second merge changed the file (%v):\n%s", err, again)
	}

	// The user edits devmtls's task; the environment moves: only the
	// arguments follow.
	edited := strings.Replace(string(out), `"reveal": "silent"`, `"reveal": "always", "panel": "dedicated"`, 1)
	spec.EnvDir = "/elsewhere/env"
	out, added, updated, err = MergeTasks([]byte(edited), spec)
	if err != nil || added || !updated {
		t.Fatalf("added %v updated %v err %v", added, updated, err)
	}
	task := tasksByLabel(t, out)[RenewName]
	if !reflect.DeepEqual(task["args"], []any{"--dir", "/elsewhere/env", "certs"}) || task["presentation"].(map[string]any)["panel"] != "dedicated" {
		t.Errorf("task = %v", task)
	}
}

func TestMergeTasksRejects(t *testing.T) {
	spec := testSpec(t, "/p")
	for name, src := range map[string]string{
		"not json":         "{ oops",
		"array at the top": "[]",
		"tasks not array":  `{"tasks": {}}`,
	} {
		if _, _, _, err := MergeTasks([]byte(src), spec); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
	spec.EnvDir = ""
	if _, _, _, err := MergeTasks(nil, spec); err == nil {
		t.Error("a renewal task without an environment was written")
	}
}

// TestLaunchConfigsRunTheRenewalTask: every devmtls configuration names the
// task, whether new or already there; a preLaunchTask of the user's stays.
func TestLaunchConfigsRunTheRenewalTask(t *testing.T) {
	spec := testSpec(t, "/p")
	src := `{"configurations": [
  {"name": "devmtls: Go", "type": "go", "env": {}},
  {"name": "devmtls: Python", "preLaunchTask": "my build"},
  {"name": "mine", "type": "node"}
]}`
	out, _, updated, err := MergeLaunch([]byte(src), spec)
	if err != nil {
		t.Fatal(err)
	}
	configs := configsByName(t, out)
	for name, want := range map[string]any{"devmtls: Go": RenewName, "devmtls: Python": "my build", "devmtls: Node.js": RenewName, "mine": nil} {
		if got := configs[name]["preLaunchTask"]; got != want {
			t.Errorf("%s: preLaunchTask = %v, want %v", name, got, want)
		}
	}
	if !slices.Contains(updated, "devmtls: Go") {
		t.Errorf("updated = %v", updated)
	}
}

type shConfigFile struct {
	Configuration struct {
		Name    string `xml:"name,attr"`
		Type    string `xml:"type,attr"`
		Options []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"option"`
	} `xml:"configuration"`
}

func (f shConfigFile) option(name string) string {
	for _, o := range f.Configuration.Options {
		if o.Name == name {
			return o.Value
		}
	}
	return ""
}

func TestRenewConfig(t *testing.T) {
	spec := testSpec(t, "/home/jane/orders")
	out, _, err := MergeRenewConfig(nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	var f shConfigFile
	if err := xml.Unmarshal(out, &f); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if f.Configuration.Name != RenewName || f.Configuration.Type != "ShConfigurationType" ||
		f.option("SCRIPT_TEXT") != "devmtls --dir .devmtls certs" || f.option("SCRIPT_WORKING_DIRECTORY") != "$PROJECT_DIR$" ||
		f.option("EXECUTE_IN_TERMINAL") != "false" || f.option("EXECUTE_SCRIPT_FILE") != "false" {
		t.Errorf("renewal configuration:\n%s", out)
	}
	again, changed, err := MergeRenewConfig(out, spec)
	if err != nil || changed || !bytes.Equal(again, out) {
		t.Errorf("second merge changed it (%v)", err)
	}
	spec.EnvDir = "/srv/dev env/it's"
	moved, changed, err := MergeRenewConfig(out, spec)
	if err != nil || !changed || !strings.Contains(string(moved), `value="devmtls --dir '/srv/dev env/it'\''s' certs"`) {
		t.Errorf("moved environment (%v):\n%s", err, moved)
	}
	if _, _, err := MergeRenewConfig([]byte(pycharmFile), spec); err == nil || !strings.Contains(err.Error(), "not devmtls's run configuration") {
		t.Errorf("foreign file: %v", err)
	}
}

// TestBeforeLaunchStepIsAddedOnce: a step naming the renewal that exists,
// even disabled by the user, is left alone.
func TestBeforeLaunchStepIsAddedOnce(t *testing.T) {
	spec := testSpec(t, "/home/jane/orders")
	disabled := strings.Replace(pycharmFile, `<option name="RunConfigurationTask" enabled="true" run_configuration_name="migrate"`,
		`<option name="RunConfigurationTask" enabled="false" run_configuration_name="devmtls: certs"`, 1)
	out, _, err := MergeRunConfig([]byte(disabled), spec, Target{Lang: Python})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), `run_configuration_name="devmtls: certs"`); n != 1 || !strings.Contains(string(out), `enabled="false" run_configuration_name="devmtls: certs"`) {
		t.Errorf("%d steps:\n%s", n, out)
	}
}

func FuzzMergeTasks(f *testing.F) {
	f.Add([]byte(userTasks))
	f.Add([]byte(""))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"tasks": [{"label": "devmtls: certs", "args": "x"}]}`))
	f.Add([]byte("\ufeff{\r\n\t\"tasks\": [\r\n\t\t{\"label\": \"x\"} // keep\r\n\t]\r\n}\r\n"))
	spec := testSpec(f, "/home/jane/orders")
	f.Fuzz(func(t *testing.T, src []byte) {
		out, _, _, err := MergeTasks(src, spec)
		if err != nil {
			return
		}
		body := bytes.TrimPrefix(out, utf8BOM)
		std, err := hujson.Standardize(bytes.Clone(body))
		if err != nil {
			t.Fatalf("result does not parse: %v\n%s", err, out)
		}
		var root struct {
			Tasks []map[string]any `json:"tasks"`
		}
		if err := json.Unmarshal(std, &root); err != nil {
			// Tasks that are not objects are the user's and stay.
			var loose struct {
				Tasks []any `json:"tasks"`
			}
			if json.Unmarshal(std, &loose) != nil {
				t.Fatalf("no tasks array: %v\n%s", err, out)
			}
		}
		found := false
		for _, task := range root.Tasks {
			if task["label"] == RenewName {
				found = true
			}
		}
		if len(root.Tasks) > 0 && !found {
			t.Fatalf("renewal task missing:\n%s", out)
		}
		again, _, _, err := MergeTasks(out, spec)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second merge differs (%v):\n%s\n=>\n%s", err, out, again)
		}
	})
}
