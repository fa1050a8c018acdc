package ide

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/hostenv"
)

// runConfigFile is the shape of a .run.xml file, for encoding/xml.
type runConfigFile struct {
	XMLName       xml.Name `xml:"component"`
	Name          string   `xml:"name,attr"`
	Configuration struct {
		Name       string `xml:"name,attr"`
		Type       string `xml:"type,attr"`
		FolderName string `xml:"folderName,attr"`
		Envs       []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"envs>env"`
		Options []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"option"`
	} `xml:"configuration"`
}

func readRunConfig(t *testing.T, b []byte) (runConfigFile, map[string]string) {
	t.Helper()
	var f runConfigFile
	if err := xml.Unmarshal(b, &f); err != nil {
		t.Fatalf("run configuration does not parse: %v\n%s", err, b)
	}
	env := map[string]string{}
	for _, e := range f.Configuration.Envs {
		env[e.Name] = e.Value
	}
	return f, env
}

// pycharmFile is a run configuration as PyCharm writes it.
const pycharmFile = `<component name="ProjectRunConfigurationManager">
  <configuration default="false" name="devmtls: Python" type="PythonConfigurationType" factoryName="Python" folderName="devmtls">
    <module name="orders" />
    <option name="ENV_FILES" value="" />
    <option name="INTERPRETER_OPTIONS" value="" />
    <option name="PARENT_ENVS" value="true" />
    <envs>
      <env name="PYTHONUNBUFFERED" value="1" />
      <env name="MTLS_CA" value="$PROJECT_DIR$/old/ca" />
      <env name="SSL_CERT_FILE" value="$PROJECT_DIR$/.devmtls/ca" />
    </envs>
    <option name="SDK_HOME" value="" />
    <option name="WORKING_DIRECTORY" value="$PROJECT_DIR$" />
    <option name="IS_MODULE_SDK" value="true" />
    <option name="ADD_CONTENT_ROOTS" value="true" />
    <option name="ADD_SOURCE_ROOTS" value="true" />
    <EXTENSION ID="PythonCoverageRunConfigurationExtension" runner="coverage.py" />
    <option name="SCRIPT_NAME" value="$PROJECT_DIR$/api/app.py" />
    <option name="PARAMETERS" value="--port 8443 &quot;quoted&quot; &amp; more" />
    <option name="SHOW_COMMAND_LINE" value="false" />
    <option name="EMULATE_TERMINAL" value="false" />
    <option name="MODULE_MODE" value="false" />
    <option name="REDIRECT_INPUT" value="false" />
    <option name="INPUT_FILE" value="" />
    <method v="2">
      <option name="RunConfigurationTask" enabled="true" run_configuration_name="migrate" run_configuration_type="PythonConfigurationType" />
    </method>
  </configuration>
</component>
`

func TestXMLRoundTripIsExact(t *testing.T) {
	for _, src := range []string{pycharmFile,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- generated -->\n<component name=\"x\">\n  <a b=\"line&#10;break&#9;tab &lt;&gt;\" />\n  <text>hello &amp; bye</text>\n</component>\n"} {
		doc, err := parseXML([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(renderXML(doc)); got != src {
			t.Errorf("round trip changed the file:\n%s\nwant:\n%s", got, src)
		}
	}
}

func TestMergeRunConfigUpdatesInPlace(t *testing.T) {
	spec := testSpec(t, "/home/jane/orders")
	out, changed, err := MergeRunConfig([]byte(pycharmFile), spec, Target{Lang: Python})
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	f, env := readRunConfig(t, out)
	want := map[string]string{"PYTHONUNBUFFERED": "1", "MTLS_CERT": "$PROJECT_DIR$/.devmtls/cert", "MTLS_KEY": "$PROJECT_DIR$/.devmtls/key",
		"MTLS_CA": "$PROJECT_DIR$/.devmtls/ca", "MTLS_KEY_CERT": "$PROJECT_DIR$/.devmtls/key+cert"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("envs = %v, want %v", env, want)
	}
	options := map[string]string{}
	for _, o := range f.Configuration.Options {
		options[o.Name] = o.Value
	}
	for name, want := range map[string]string{"SCRIPT_NAME": "$PROJECT_DIR$/api/app.py", "PARAMETERS": `--port 8443 "quoted" & more`} {
		if got, ok := options[name]; !ok || got != want {
			t.Errorf("user setting changed: %s = %q (set: %v), want %q", name, got, ok, want)
		}
	}
	// Only the <envs> lines and the before-launch step differ from what
	// PyCharm wrote; the user's own step stays first.
	if !strings.Contains(string(out), `run_configuration_name="migrate" run_configuration_type="PythonConfigurationType" />
      <option name="RunConfigurationTask" enabled="true" run_configuration_name="devmtls: certs" run_configuration_type="ShConfigurationType" />
    </method>`) {
		t.Errorf("before-launch step missing or misplaced:\n%s", out)
	}
	withoutEnvs := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, "<env ") && !strings.Contains(l, `"devmtls: certs"`) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if withoutEnvs(string(out)) != withoutEnvs(pycharmFile) {
		t.Errorf("more than the variables changed:\n%s", out)
	}
	again, changed, err := MergeRunConfig(out, spec, Target{Lang: Python})
	if err != nil || changed || !bytes.Equal(again, out) {
		t.Errorf("second merge: changed %v, err %v\n%s", changed, err, again)
	}
}

func TestNewRunConfigs(t *testing.T) {
	dir := "/home/jane/orders"
	spec := testSpec(t, dir)
	spec.Service = "orders"
	spec.Vars = append(spec.Vars, hostenv.Var{Name: "PGSSLMODE", Value: "verify-full"})
	for _, tg := range []Target{
		{Lang: Go, Dir: dir, Entry: dir + "/cmd/orders"},
		{Lang: Python, Dir: dir + "/api", Entry: dir + "/api/app.py"},
		{Lang: Node, Dir: dir + "/web", Entry: dir + "/web/server.js"},
		{Lang: Node},
	} {
		out, _, err := MergeRunConfig(nil, spec, tg)
		if err != nil {
			t.Fatal(err)
		}
		f, env := readRunConfig(t, out)
		if f.Name != "ProjectRunConfigurationManager" || f.Configuration.Name != "devmtls: orders ("+tg.Lang.Title()+")" || f.Configuration.FolderName != "devmtls" {
			t.Errorf("%s: %+v", tg.Lang, f)
		}
		if env["MTLS_KEY"] != "$PROJECT_DIR$/.devmtls/key" || env["PGSSLMODE"] != "verify-full" || len(env) != 5 {
			t.Errorf("%s: envs = %v", tg.Lang, env)
		}
		wantType := map[Lang]string{Go: "GoApplicationRunConfiguration", Python: "PythonConfigurationType", Node: "NodeJSConfigurationType"}[tg.Lang]
		if f.Configuration.Type != wantType {
			t.Errorf("%s: type %q", tg.Lang, f.Configuration.Type)
		}
		if tg.Entry != "" && !strings.Contains(string(out), `"$PROJECT_DIR$`+strings.TrimPrefix(tg.Entry, dir)+`"`) {
			t.Errorf("%s: entry point missing:\n%s", tg.Lang, out)
		}
	}
	golden := `<component name="ProjectRunConfigurationManager">
  <configuration default="false" name="devmtls: orders (Go)" type="GoApplicationRunConfiguration" factoryName="Go Application" folderName="devmtls">
    <module name="orders" />
    <working_directory value="$PROJECT_DIR$" />
    <envs>
      <env name="MTLS_CERT" value="$PROJECT_DIR$/.devmtls/cert" />
      <env name="MTLS_KEY" value="$PROJECT_DIR$/.devmtls/key" />
      <env name="MTLS_CA" value="$PROJECT_DIR$/.devmtls/ca" />
      <env name="MTLS_KEY_CERT" value="$PROJECT_DIR$/.devmtls/key+cert" />
      <env name="PGSSLMODE" value="verify-full" />
    </envs>
    <kind value="DIRECTORY" />
    <directory value="$PROJECT_DIR$/cmd/orders" />
    <filePath value="$PROJECT_DIR$" />
    <method v="2">
      <option name="RunConfigurationTask" enabled="true" run_configuration_name="devmtls: certs" run_configuration_type="ShConfigurationType" />
    </method>
  </configuration>
</component>
`
	out, _, _ := MergeRunConfig(nil, spec, Target{Lang: Go, Dir: dir, Entry: dir + "/cmd/orders"})
	if string(out) != golden {
		t.Errorf("Go run configuration:\n%s\nwant:\n%s", out, golden)
	}
}

func TestWriteJetBrains(t *testing.T) {
	dir := t.TempDir()
	spec := testSpec(t, dir)
	runDir := filepath.Join(dir, ".run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := []byte("<component name=\"ProjectRunConfigurationManager\">\n<configuration name=\"mine\" />\n</component>")
	if err := os.WriteFile(filepath.Join(runDir, "mine.run.xml"), mine, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := WriteJetBrains(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || !res[0].Created || !res[0].Changed || res[3].Path != RenewConfigPath(dir) {
		t.Fatalf("results = %+v", res)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		entries, _ := os.ReadDir(runDir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(runDir, e.Name()))
			fi, _ := e.Info()
			out[e.Name()] = string(b) + fi.ModTime().String()
		}
		return out
	}
	first := snapshot()
	if len(first) != 5 || !strings.HasPrefix(first["mine.run.xml"], string(mine)) {
		t.Errorf(".run = %v", first)
	}
	for _, name := range []string{"devmtls-go.run.xml", "devmtls-python.run.xml", "devmtls-node.run.xml"} {
		b, err := os.ReadFile(filepath.Join(runDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, env := readRunConfig(t, b); env["MTLS_CERT"] != "$PROJECT_DIR$/.devmtls/cert" {
			t.Errorf("%s: envs = %v", name, env)
		}
	}
	res, err = WriteJetBrains(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Changed || r.Created || r.Updated != nil {
			t.Errorf("second run changed %+v", r)
		}
	}
	if second := snapshot(); !reflect.DeepEqual(first, second) {
		t.Errorf("second run touched files")
	}
	// A foreign file under devmtls's name is refused and left alone.
	foreign := filepath.Join(runDir, "devmtls-go.run.xml")
	if err := os.WriteFile(foreign, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteJetBrains(spec); err == nil || !strings.Contains(err.Error(), foreign) || !strings.Contains(err.Error(), "not devmtls's run configuration") {
		t.Errorf("foreign file: %v", err)
	}
	if b, _ := os.ReadFile(foreign); !bytes.Equal(b, mine) {
		t.Errorf("foreign file changed")
	}
}

func TestMergeRunConfigRejects(t *testing.T) {
	spec := testSpec(t, "/p")
	for name, src := range map[string]string{
		"not xml":       "<component",
		"mismatched":    "<component><configuration></component>",
		"two roots":     "<a /><b />",
		"doctype":       "<!DOCTYPE x><component />",
		"other config":  `<component name="ProjectRunConfigurationManager"><configuration name="x" /></component>`,
		"wrong root":    `<project><configuration name="devmtls: Go" /></project>`,
		"bad entity":    `<component>&nbsp;</component>`,
		"trailing text": `<component /> junk`,
	} {
		if _, _, err := MergeRunConfig([]byte(src), spec, Target{Lang: Go}); err == nil {
			t.Errorf("%s: accepted %s", name, src)
		}
	}
	spec.Vars = append(spec.Vars, hostenv.Var{Name: "BAD", Value: "a\x01b"})
	if _, _, err := MergeRunConfig(nil, spec, Target{Lang: Go}); err == nil || !strings.Contains(err.Error(), "BAD") {
		t.Errorf("control character: %v", err)
	}
}

func FuzzMergeRunConfig(f *testing.F) {
	f.Add([]byte(pycharmFile))
	f.Add([]byte(""))
	f.Add([]byte(`<component name="ProjectRunConfigurationManager"><configuration name="devmtls: Go"><envs><env name="MTLS_CA" value="x" /><!-- c --></envs>text<method v="2" /></configuration></component>`))
	f.Add([]byte("<?xml version=\"1.0\"?>\n<component>\n  <configuration name=\"devmtls: Go\" a=\"&#10;&amp;\" />\n</component>"))
	spec := testSpec(f, "/home/jane/orders")
	f.Fuzz(func(t *testing.T, src []byte) {
		// The tree writer is stable: what it writes reads back to the same text.
		if doc, err := parseXML(src); err == nil {
			once := renderXML(doc)
			doc2, err := parseXML(once)
			if err != nil {
				t.Fatalf("rendered XML does not parse: %v\n%s", err, once)
			}
			if twice := renderXML(doc2); !bytes.Equal(once, twice) {
				t.Fatalf("render not stable:\n%s\n---\n%s", once, twice)
			}
		}
		out, _, err := MergeRunConfig(src, spec, Target{Lang: Go})
		if err != nil {
			return
		}
		var f struct {
			Configs []struct {
				Name string `xml:"name,attr"`
				Envs []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"envs>env"`
			} `xml:"configuration"`
		}
		if err := xml.Unmarshal(out, &f); err != nil {
			t.Fatalf("result does not parse: %v\n%s", err, out)
		}
		ok := false
		for _, c := range f.Configs {
			if c.Name != "devmtls: Go" {
				continue
			}
			env := map[string]string{}
			for _, e := range c.Envs {
				env[e.Name] = e.Value
			}
			ok = env["MTLS_CERT"] == "$PROJECT_DIR$/.devmtls/cert" && env["MTLS_KEY_CERT"] == "$PROJECT_DIR$/.devmtls/key+cert"
			break
		}
		if !ok {
			t.Fatalf("variables missing:\n%s", out)
		}
		again, changed, err := MergeRunConfig(out, spec, Target{Lang: Go})
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("second merge differs (changed %v, %v):\n%s\n---\n%s", changed, err, out, again)
		}
	})
}
