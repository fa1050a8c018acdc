package hostenv

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devmtls/devmtls/internal/testenv"
)

// nastyValues are file names a shell or dotenv reader could get wrong.
var nastyValues = map[string]string{
	"SPACE":     "/home/Jane Doe/proj/.devmtls/cert",
	"SQUOTE":    "/home/o'brien/.devmtls/key",
	"DQUOTE":    `/tmp/say "hi"/ca`,
	"DOLLAR":    "/tmp/$HOME/${USER}/$(touch pwned-dollar)",
	"BACKTICK":  "/tmp/`touch pwned-backtick`/x",
	"WINDOWS":   `C:\Users\Jane Doe\AppData\Local\devmtls\cert`,
	"BACKSLASH": `/tmp/trailing\`,
	"GLOB":      "/tmp/*/?[a]{b,c}~",
	"HISTORY":   "/tmp/!!/!$/x",
	"META":      "/tmp/a;b&c|d<e>f(g)h#i",
	"PERCENT":   "/tmp/%PATH%/x",
	"UNICODE":   "/tmp/ünï ✓ ‘curly’ „q“/x",
	"NEWLINE":   "/tmp/line\nbreak",
	"TAB":       "/tmp/tab\there",
	"EMPTY":     "",
	"FISHESC":   `/tmp/\'x\\'`,
	"DASH":      "-n",
}

func nastyVars(skip ...string) []Var {
	var vars []Var
	for _, name := range slices.Sorted(maps.Keys(nastyValues)) {
		if !strings.Contains(" "+strings.Join(skip, " ")+" ", " "+name+" ") {
			vars = append(vars, Var{Name: "T_" + name, Value: nastyValues[name]})
		}
	}
	return vars
}

func render(t *testing.T, f Format, vars []Var) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, f, vars); err != nil {
		t.Fatalf("Render(%s): %v", f, err)
	}
	return b.String()
}

func TestRenderGolden(t *testing.T) {
	vars := []Var{{Name: "MTLS_CERT", Value: "/a b/cert"}, {Name: "PGSSLMODE", Value: "verify-full"}}
	for f, want := range map[Format]string{
		FormatSh:         "# Set these in your shell with: eval \"$(devmtls env)\"\nexport MTLS_CERT='/a b/cert'\nexport PGSSLMODE='verify-full'\n",
		FormatFish:       "# Set these in fish with: devmtls env --format fish | source\nset -gx MTLS_CERT '/a b/cert'\nset -gx PGSSLMODE 'verify-full'\n",
		FormatPowerShell: "# Set these in PowerShell with: devmtls env --format powershell | Out-String | Invoke-Expression\n$Env:MTLS_CERT = '/a b/cert'\n$Env:PGSSLMODE = 'verify-full'\n",
		FormatCmd:        "REM Set these in cmd.exe with: @FOR /F \"tokens=*\" %i IN ('devmtls env --format cmd') DO @%i\r\nSET \"MTLS_CERT=/a b/cert\"\r\nSET \"PGSSLMODE=verify-full\"\r\n",
		FormatDotenv:     "MTLS_CERT='/a b/cert'\nPGSSLMODE=verify-full\n",
		FormatJSON:       "{\n  \"MTLS_CERT\": \"/a b/cert\",\n  \"PGSSLMODE\": \"verify-full\"\n}\n",
	} {
		if got := render(t, f, vars); got != want {
			t.Errorf("%s:\n got %q\nwant %q", f, got, want)
		}
	}
	if got := render(t, FormatJSON, nil); got != "{}\n" {
		t.Errorf("empty JSON = %q", got)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"sh": FormatSh, "BASH": FormatBash, "zsh": FormatZsh, "fish": FormatFish,
		"powershell": FormatPowerShell, "pwsh": FormatPowerShell, "cmd": FormatCmd, "dotenv": FormatDotenv, "env": FormatDotenv, "json": FormatJSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("csh"); err == nil || !strings.Contains(err.Error(), "sh, bash, zsh, fish, powershell, cmd, dotenv, json") {
		t.Errorf("ParseFormat(csh) error = %v", err)
	}
}

// envOf runs script in a real shell and returns the environment it ends with.
func envOf(t *testing.T, dir string, argv ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "USER=tester"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, stderr.String())
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func checkEnv(t *testing.T, shell string, got map[string]string, vars []Var, dir string) {
	t.Helper()
	for _, v := range vars {
		if g, ok := got[v.Name]; !ok || g != v.Value {
			t.Errorf("%s: %s = %q (set: %v), want %q", shell, v.Name, g, ok, v.Value)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "pwned*")); len(m) > 0 {
		t.Errorf("%s executed a command substitution from a value: %v", shell, m)
	}
}

// TestShellsEvalRealShells evaluates the output in the real shells: bash and zsh
// with eval "$(…)", dash as plain sh, fish through `| source`.
func TestShellsEvalRealShells(t *testing.T) {
	vars := nastyVars()
	for _, sh := range []struct {
		name   string
		format Format
		argv   func(file string) []string
	}{
		{"bash", FormatBash, func(f string) []string { return []string{"bash", "-c", `eval "$(cat "$1")" && exec env -0`, "bash", f} }},
		{"zsh", FormatZsh, func(f string) []string { return []string{"zsh", "-c", `eval "$(cat "$1")" && exec env -0`, "zsh", f} }},
		{"sh", FormatSh, func(f string) []string { return []string{"sh", "-c", `eval "$(cat "$1")" && exec env -0`, "sh", f} }},
		// Interactive-style history expansion must not fire either.
		{"bash -i", FormatSh, func(f string) []string {
			return []string{"bash", "--norc", "-i", "-c", `set -H; eval "$(cat "$1")" && exec env -0`, "bash", f}
		}},
		{"fish", FormatFish, func(f string) []string {
			return []string{"fish", "--no-config", "-c", `cat $argv[1] | source; and exec env -0`, f}
		}},
	} {
		t.Run(sh.name, func(t *testing.T) {
			testenv.LookPath(t, strings.Fields(sh.name)[0], "apt-get install "+strings.Fields(sh.name)[0])
			dir := t.TempDir()
			file := filepath.Join(dir, "env.out")
			if err := os.WriteFile(file, []byte(render(t, sh.format, vars)), 0o600); err != nil {
				t.Fatal(err)
			}
			checkEnv(t, sh.name, envOf(t, dir, sh.argv(file)...), vars, dir)
		})
	}
}

// TestDotenvRealReaders reads the dotenv output back with Node.js --env-file and
// with a POSIX shell sourcing it under `set -a`, the two readers on this machine.
func TestDotenvRealReaders(t *testing.T) {
	// Line breaks, "${", a trailing backslash and quotes mixed with $ or \
	// are refused in dotenv (TestDotenvQuoting).
	vars := nastyVars("NEWLINE", "FISHESC", "BACKSLASH", "DOLLAR")
	vars = append(vars, Var{Name: "T_PLAIN_DOLLAR", Value: "/tmp/$HOME/$(touch pwned-dollar)"})
	dir := t.TempDir()
	file := filepath.Join(dir, "mtls.env")
	out := render(t, FormatDotenv, vars)
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("node --env-file", func(t *testing.T) {
		testenv.LookPath(t, "node", "apt-get install nodejs")
		if exec.Command("node", "--env-file="+file, "-e", "0").Run() != nil {
			testenv.Missing(t, "Node.js 20.6 or newer (for --env-file)", "install nodejs from NodeSource")
		}
		checkEnv(t, "node", envOf(t, dir, "node", "--env-file="+file, "-e",
			`for (const [k, v] of Object.entries(process.env)) process.stdout.write(k + "=" + v + "\0")`), vars, dir)
	})
	t.Run("python-dotenv", func(t *testing.T) {
		testenv.LookPath(t, "python3", "apt-get install python3")
		if exec.Command("python3", "-c", "import dotenv").Run() != nil {
			testenv.Missing(t, "python-dotenv", "apt-get install python3-dotenv")
		}
		checkEnv(t, "python-dotenv", envOf(t, dir, "python3", "-c",
			`import sys, dotenv
for k, v in dotenv.dotenv_values(sys.argv[1]).items():
    sys.stdout.write(k + "=" + v + "\0")`, file), vars, dir)
	})
	t.Run("sh set -a", func(t *testing.T) {
		checkEnv(t, "sh", envOf(t, dir, "sh", "-c", `set -a; . "$1"; exec env -0`, "sh", file), vars, dir)
	})
}

func TestDotenvQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"/plain/path-1.2_x:y@z%+,=": "/plain/path-1.2_x:y@z%+,=",
		"/a b":                      "'/a b'",
		`C:\Users\Jane`:             `'C:\Users\Jane'`,
		"/it's":                     `"/it's"`,
		"":                          "''",
	} {
		got, err := QuoteDotenv(in)
		if err != nil || got != want {
			t.Errorf("QuoteDotenv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"a\nb", `it's "$x"`, `it's\`, "a\rb", "it's `x`", "/tmp/${USER}/x"} {
		if got, err := QuoteDotenv(in); err == nil {
			t.Errorf("QuoteDotenv(%q) = %q, want an error", in, got)
		}
	}
	if err := Render(&bytes.Buffer{}, FormatDotenv, []Var{{Name: "X", Value: "a\nb"}}); err == nil || !strings.Contains(err.Error(), "variable X") {
		t.Errorf("Render dotenv with a line break: %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	vars := nastyVars()
	var got map[string]string
	if err := json.Unmarshal([]byte(render(t, FormatJSON, vars)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(vars) {
		t.Errorf("JSON has %d variables, want %d", len(got), len(vars))
	}
	for _, v := range vars {
		if got[v.Name] != v.Value {
			t.Errorf("JSON %s = %q, want %q", v.Name, got[v.Name], v.Value)
		}
	}
}

// PowerShell is not installable from Debian's archive, so its quoting is checked
// here against the rules in PowerShell's about_Quoting_Rules: in a single-quoted
// string nothing is expanded, and a single quote — ASCII or typographic
// (U+2018, U+2019, U+201A, U+201B) — is written by doubling it.
func TestQuotePowerShell(t *testing.T) {
	for in, want := range map[string]string{
		`C:\Users\Jane Doe\AppData\cert`: `'C:\Users\Jane Doe\AppData\cert'`,
		"$Env:HOME `n \"x\"":             "'$Env:HOME `n \"x\"'",
		"o'brien":                        "'o''brien'",
		"‘curly’ ‚low‛":                  "'‘‘curly’’ ‚‚low‛‛'",
		"":                               "''",
	} {
		if got := QuotePowerShell(in); got != want {
			t.Errorf("QuotePowerShell(%q) = %q, want %q", in, got, want)
		}
	}
}

// cmd.exe cannot run here either; these follow its documented SET "name=value"
// form, where quotes protect &|<>^ and FOR /F does not expand %…% again.
func TestCmdFormat(t *testing.T) {
	got := render(t, FormatCmd, []Var{{Name: "MTLS_CERT", Value: `C:\Users\Jane Doe\a&b|c^d%PATH%\cert`}})
	if !strings.Contains(got, "SET \"MTLS_CERT=C:\\Users\\Jane Doe\\a&b|c^d%PATH%\\cert\"\r\n") {
		t.Errorf("cmd output = %q", got)
	}
	for _, bad := range []string{`C:\say "hi"`, "a\nb", "a\rb"} {
		if err := Render(&bytes.Buffer{}, FormatCmd, []Var{{Name: "X", Value: bad}}); err == nil {
			t.Errorf("cmd accepted %q", bad)
		}
	}
}

func TestRenderWritesNothingOnError(t *testing.T) {
	var b bytes.Buffer
	err := Render(&b, FormatCmd, []Var{{Name: "A", Value: "ok"}, {Name: "B", Value: `bad"`}})
	if err == nil || b.Len() != 0 {
		t.Fatalf("Render = %v, wrote %q", err, b.String())
	}
}
