package ide

import (
	"strings"

	"github.com/tailscale/hujson"
)

// field is one member of an ordered JSON object; val is a string, a []string
// or a nested []field.
type field struct {
	key string
	val any
}

// renderJSON writes an object whose opening brace sits on a line indented by
// indent, one member per line, as VS Code formats launch.json.
func renderJSON(fields []field, indent, unit string) string {
	var b strings.Builder
	writeJSONValue(&b, fields, indent, unit)
	return b.String()
}

func writeJSONValue(b *strings.Builder, v any, indent, unit string) {
	switch v := v.(type) {
	case string:
		b.Write(hujson.String(v))
	case []string:
		b.WriteString("[")
		for i, s := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			b.Write(hujson.String(s))
		}
		b.WriteString("]")
	case []field:
		if len(v) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, f := range v {
			b.WriteString(indent + unit)
			b.Write(hujson.String(f.key))
			b.WriteString(": ")
			writeJSONValue(b, f.val, indent+unit, unit)
			if i < len(v)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "}")
	default:
		panic("ide: unsupported JSON value")
	}
}

// jsonValue is v (see field) as a hujson value on one line.
func jsonValue(v any) hujson.Value {
	var b strings.Builder
	writeJSONValue(&b, v, "", "")
	return mustParse(b.String())
}
