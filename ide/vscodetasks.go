package ide

import (
	"errors"
	"path/filepath"
	"slices"

	"github.com/tailscale/hujson"
)

// TasksPath is the file VS Code reads tasks from.
func TasksPath(projectDir string) string {
	return filepath.Join(projectDir, ".vscode", "tasks.json")
}

// newTasksJSON is where a new tasks.json starts, as VS Code creates it.
const newTasksJSON = "{\n    \"version\": \"2.0.0\",\n    \"tasks\": []\n}\n"

// MergeTasks returns the tasks.json src (JSON with comments and trailing
// commas; empty for a new file) with the task devmtls's launch configurations
// run before each launch: RenewName, which runs `devmtls --dir ENV certs` as
// a process (no shell, so no quoting), creating or renewing the credentials
// the configurations' variables point at. A task of that label that exists
// keeps everything the user changed but its arguments, which follow the
// environment directory; the user's own tasks, comments and layout stay.
func MergeTasks(src []byte, spec Spec) (out []byte, added, updated bool, err error) {
	if spec.EnvDir == "" {
		return nil, false, false, errors.New("ide: the renewal task needs Spec.EnvDir")
	}
	doc, err := openJSON(src, newTasksJSON)
	if err != nil {
		return nil, false, false, err
	}
	m := doc.merger
	arr, arrIndent, err := doc.array("tasks")
	if err != nil {
		return nil, false, false, err
	}
	args := renewArgs(spec, VSCodeMacro)
	found := false
	for i := range arr.Elements {
		task, ok := arr.Elements[i].Value.(*hujson.Object)
		if !ok {
			continue
		}
		if l := member(task, "label"); l == nil || l.Value.Kind() != '"' || l.Value.(hujson.Literal).String() != RenewName {
			continue
		}
		found = true
		cur := member(task, "args")
		switch {
		case cur == nil:
			appendMember(task, m.indent(&arr.Elements[i]), m.unit, "args", jsonValue(args))
			updated = true
		case !slices.Equal(stringList(cur), args):
			cur.Value = jsonValue(args).Value
			updated = true
		}
	}
	if !found {
		itemIndent := arrIndent + m.unit
		if len(arr.Elements) > 0 {
			itemIndent = m.elementIndent(arr, arrIndent)
		}
		appendElement(arr, arrIndent, m.unit, mustParse(renewTaskJSON(args, itemIndent, m.unit)))
		m.indents[arr.Elements[len(arr.Elements)-1].Value] = itemIndent
		added = true
	}
	return doc.pack(), added, updated, nil
}

// stringList returns a JSON array of strings as a slice; nil for anything
// else, which then never equals devmtls's arguments.
func stringList(v *hujson.Value) []string {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		return nil
	}
	out := []string{}
	for _, e := range arr.Elements {
		lit, ok := e.Value.(hujson.Literal)
		if !ok || lit.Kind() != '"' {
			return nil
		}
		out = append(out, lit.String())
	}
	return out
}

// renewTaskJSON is the renewal task: devmtls run directly as a process in the
// workspace folder, its output shown only when it fails.
func renewTaskJSON(args []string, indent, unit string) string {
	return renderJSON([]field{
		{"label", RenewName},
		{"detail", "create or renew the dev credentials the devmtls launch configurations use"},
		{"type", "process"},
		{"command", "devmtls"},
		{"args", args},
		{"options", []field{{"cwd", VSCodeMacro}}},
		{"problemMatcher", []string{}},
		{"presentation", []field{{"reveal", "silent"}}},
	}, indent, unit)
}
