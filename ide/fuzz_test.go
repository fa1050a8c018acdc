package ide

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tailscale/hujson"
)

// comments returns every comment in a HuJSON document, in order.
func comments(v *hujson.Value) []string {
	var out []string
	add := func(e hujson.Extra) {
		for len(e) > 0 {
			switch {
			case bytes.HasPrefix(e, []byte("//")):
				end := bytes.IndexByte(e, '\n')
				if end < 0 {
					end = len(e)
				}
				out = append(out, string(bytes.TrimRight(e[:end], "\r")))
				e = e[end:]
			case bytes.HasPrefix(e, []byte("/*")):
				end := bytes.Index(e[2:], []byte("*/")) + 4
				out = append(out, string(e[:end]))
				e = e[end:]
			default:
				e = e[1:]
			}
		}
	}
	for x := range v.All() {
		add(x.BeforeExtra)
		add(x.AfterExtra)
		switch c := x.Value.(type) {
		case *hujson.Object:
			add(c.AfterExtra)
		case *hujson.Array:
			add(c.AfterExtra)
		}
	}
	return out
}

// userParts returns, in standard JSON, what devmtls must never change: the
// top-level members other than "configurations" and the configurations
// devmtls does not own.
func userParts(t *testing.T, b []byte, spec Spec) (others map[string]any, configs []any) {
	std, err := hujson.Standardize(bytes.Clone(b))
	if err != nil {
		t.Fatalf("does not parse: %v\n%s", err, b)
	}
	var root map[string]any
	if err := json.Unmarshal(std, &root); err != nil {
		t.Fatalf("not an object: %v", err)
	}
	owned := map[string]bool{}
	for _, tg := range spec.Targets {
		owned[ConfigName(tg.Lang, spec.Service)] = true
	}
	if list, ok := root["configurations"].([]any); ok {
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				if name, _ := m["name"].(string); owned[name] {
					continue
				}
			}
			configs = append(configs, c)
		}
	}
	delete(root, "configurations")
	return root, configs
}

func FuzzMergeLaunch(f *testing.F) {
	f.Add([]byte(userLaunch))
	f.Add([]byte(""))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"configurations": []}`))
	f.Add([]byte("{\n  \"configurations\": [\n    {\"name\": \"x\"} // keep me\n    // and me\n  ]\n}"))
	f.Add([]byte(`{"configurations": [{"name": "devmtls: Go", "env": {"MTLS_CA": "old", "SSL_CERT_FILE": "x", /* c */ "A": "1",},},],}`))
	f.Add([]byte("\ufeff{\r\n\t\"configurations\": [\r\n\t\t{\"name\": \"devmtls: Node.js\", \"env\": {\r\n\t\t\t\"PGSSLMODE\": \"require\" // old\r\n\t\t}}\r\n\t]\r\n}\r\n"))
	spec := testSpec(f, "/home/jane/orders")
	f.Fuzz(func(t *testing.T, src []byte) {
		out, _, _, err := MergeLaunch(src, spec)
		if err != nil {
			return
		}
		body := bytes.TrimPrefix(out, utf8BOM)
		in := bytes.TrimPrefix(src, utf8BOM)
		if len(bytes.TrimSpace(in)) == 0 {
			in = []byte(newLaunchJSON)
		}
		// The result parses, and every configuration devmtls owns carries the
		// variables.
		std, err := hujson.Standardize(bytes.Clone(body))
		if err != nil {
			t.Fatalf("result does not parse: %v\ninput:\n%s\noutput:\n%s", err, src, out)
		}
		var root struct {
			Configurations []any `json:"configurations"`
		}
		if err := json.Unmarshal(std, &root); err != nil {
			t.Fatalf("result has no configurations array: %v\n%s", err, out)
		}
		found := map[string]bool{}
		for _, elem := range root.Configurations {
			c, _ := elem.(map[string]any)
			name, _ := c["name"].(string)
			for _, tg := range spec.Targets {
				if name == ConfigName(tg.Lang, "") {
					found[name] = true
					env, _ := c["env"].(map[string]any)
					for _, v := range values(spec, VSCodeMacro) {
						if env[v.Name] != v.Value {
							t.Fatalf("%s: %s = %v, want %q\n%s", name, v.Name, env[v.Name], v.Value, out)
						}
					}
				}
			}
		}
		if len(found) != len(spec.Targets) {
			t.Fatalf("configurations missing: %v\n%s", found, out)
		}
		// What the user owns is unchanged.
		o1, c1 := userParts(t, in, spec)
		o2, c2 := userParts(t, body, spec)
		if !reflect.DeepEqual(o1, o2) || !reflect.DeepEqual(c1, c2) {
			t.Fatalf("user content changed:\n%s\n=>\n%s", src, out)
		}
		// No comment is lost.
		vin, _ := hujson.Parse(bytes.Clone(in))
		vout, _ := hujson.Parse(bytes.Clone(body))
		have := map[string]int{}
		for _, c := range comments(&vout) {
			have[c]++
		}
		for _, c := range comments(&vin) {
			if have[c] == 0 {
				t.Fatalf("lost comment %q:\n%s\n=>\n%s", c, src, out)
			}
			have[c]--
		}
		// A second run changes nothing.
		again, _, _, err := MergeLaunch(out, spec)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second merge differs (%v):\n%s\n=>\n%s", err, out, again)
		}
	})
}
