package hostenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/devmtls/devmtls/internal/choice"
)

// Format is an output syntax for `devmtls env`.
type Format string

// The output formats. sh, bash and zsh share the POSIX syntax.
const (
	FormatSh         Format = "sh"
	FormatBash       Format = "bash"
	FormatZsh        Format = "zsh"
	FormatFish       Format = "fish"
	FormatPowerShell Format = "powershell"
	FormatCmd        Format = "cmd"
	FormatDotenv     Format = "dotenv"
	FormatJSON       Format = "json"
)

// Formats lists every format in help order.
func Formats() []Format {
	return []Format{FormatSh, FormatBash, FormatZsh, FormatFish, FormatPowerShell, FormatCmd, FormatDotenv, FormatJSON}
}

// ParseFormat accepts a format name (and pwsh for powershell, env for dotenv).
func ParseFormat(s string) (Format, error) {
	return choice.Parse("format", s, Formats(), map[string]Format{"pwsh": FormatPowerShell, "env": FormatDotenv, ".env": FormatDotenv})
}

// Render writes vars in format f. Nothing is written when a value cannot be
// expressed in f (say, a double quote for cmd.exe), so a caller never evaluates
// half an environment.
func Render(w io.Writer, f Format, vars []Var) error {
	var b bytes.Buffer
	switch f {
	case FormatSh, FormatBash, FormatZsh:
		b.WriteString("# Set these in your shell with: eval \"$(devmtls env)\"\n")
		for _, v := range vars {
			fmt.Fprintf(&b, "export %s=%s\n", v.Name, QuotePOSIX(v.Value))
		}
	case FormatFish:
		b.WriteString("# Set these in fish with: devmtls env --format fish | source\n")
		for _, v := range vars {
			fmt.Fprintf(&b, "set -gx %s %s\n", v.Name, QuoteFish(v.Value))
		}
	case FormatPowerShell:
		b.WriteString("# Set these in PowerShell with: devmtls env --format powershell | Out-String | Invoke-Expression\n")
		for _, v := range vars {
			fmt.Fprintf(&b, "$Env:%s = %s\n", v.Name, QuotePowerShell(v.Value))
		}
	case FormatCmd:
		b.WriteString("REM Set these in cmd.exe with: @FOR /F \"tokens=*\" %i IN ('devmtls env --format cmd') DO @%i\r\n")
		for _, v := range vars {
			line, err := cmdSet(v)
			if err != nil {
				return err
			}
			b.WriteString(line + "\r\n")
		}
	case FormatDotenv:
		for _, v := range vars {
			q, err := QuoteDotenv(v.Value)
			if err != nil {
				return fmt.Errorf("variable %s: %w", v.Name, err)
			}
			fmt.Fprintf(&b, "%s=%s\n", v.Name, q)
		}
	case FormatJSON:
		b.WriteString("{")
		for i, v := range vars {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n  ")
			b.Write(jsonString(v.Name))
			b.WriteString(": ")
			b.Write(jsonString(v.Value))
		}
		if len(vars) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("}\n")
	default:
		return fmt.Errorf("unknown format %q", string(f))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimRight(b.Bytes(), "\n")
}

// QuotePOSIX quotes s for sh, bash, zsh, dash and ksh: single quotes, in which
// nothing is special; a single quote inside closes the quotes, adds an escaped
// quote and reopens them:
//
//	it's  ->  'it'\''s'
func QuotePOSIX(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteFish quotes s for fish: in fish's single quotes only \\ and \' are
// escapes, so those two characters are escaped and everything else is literal.
func QuoteFish(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// powerShellQuotes are the characters PowerShell accepts as a single quote:
// the ASCII one and the typographic ones (about_Quoting_Rules). Inside a
// single-quoted string any of them is escaped by doubling it.
const powerShellQuotes = "'\u2018\u2019\u201a\u201b"

// QuotePowerShell quotes s as a PowerShell verbatim (single-quoted) string, in
// which $, backticks and double quotes are literal.
func QuotePowerShell(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		if strings.ContainsRune(powerShellQuotes, r) {
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

// cmdSet renders `SET "NAME=value"` for cmd.exe. Inside the quotes &, |, <, >,
// ^ and spaces are literal. The lines are meant to run through FOR /F (as in
// the header), where %VAR% is not expanded again; a double quote or a line
// break cannot be expressed and is rejected (Windows file names have neither).
func cmdSet(v Var) (string, error) {
	if strings.ContainsAny(v.Value, "\"\r\n") {
		return "", fmt.Errorf("variable %s: the value %q holds a double quote or line break, which cmd.exe cannot set; use --format powershell", v.Name, v.Value)
	}
	return `SET "` + v.Name + "=" + v.Value + `"`, nil
}

// dotenvBare are the characters every dotenv reader (Docker Compose, Node.js
// --env-file, python-dotenv, VS Code's envFile, a POSIX shell sourcing the
// file) takes literally in an unquoted value.
func dotenvBare(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:@%+,=", r)
}

// QuoteDotenv writes s so that dotenv readers read it back unchanged: bare when
// it only holds safe characters, else in single quotes (literal in Compose,
// Node.js, python-dotenv and sh), else in double quotes when it has a single
// quote but no character double quotes would transform. Anything else (a line
// break, "${", a single quote together with ", $, \ or a backtick, a trailing
// \) has no portable spelling and is rejected.
func QuoteDotenv(s string) (string, error) {
	bare := s != ""
	for _, r := range s {
		if !dotenvBare(r) {
			bare = false
			break
		}
	}
	switch {
	case bare:
		return s, nil
	case strings.ContainsAny(s, "\r\n"):
		return "", fmt.Errorf("the value %q holds a line break, which dotenv files cannot carry portably", s)
	case strings.Contains(s, "${"):
		// python-dotenv expands ${VAR} even inside single quotes and has no
		// escape for it.
		return "", fmt.Errorf("the value %q holds ${, which python-dotenv expands however it is quoted; use --format json", s)
	case !strings.Contains(s, "'") && !strings.HasSuffix(s, `\`):
		// python-dotenv treats \' inside single quotes as an escape; a value
		// ending in a backslash would swallow the closing quote there.
		return "'" + s + "'", nil
	case !strings.ContainsAny(s, "\"\\$`"):
		return `"` + s + `"`, nil
	}
	return "", fmt.Errorf("the value %q has no spelling that every dotenv reader reads back unchanged (quotes mixed with $, \\ or backticks, or a trailing \\); use --format json", s)
}
