package compose

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/devmtls/devmtls/internal/digits"
	"go.yaml.in/yaml/v4"
)

// ConfigError is a bad x-devmtls field, named with the file it is in:
// `compose.yaml: services.api.x-devmtls.mount_path: must be an absolute path, got "mtls"`.
type ConfigError struct {
	File  string // as shown to the user: relative to the working directory when inside it
	Field *FieldError
}

func (e *ConfigError) Error() string { return e.File + ": " + e.Field.Error() }

// Unwrap returns the field error.
func (e *ConfigError) Unwrap() error { return e.Field }

// sourceFiles finds which of the user's files a merged x-devmtls field came
// from. compose-go merges and interpolates before devmtls sees the values, so
// the field is looked up again in each raw file: the last file (compose
// merges later files over earlier ones) that has the field's key path wins,
// following `extends` into the file of the service extended.
type sourceFiles struct {
	cwd    string
	files  []string // in merge order
	parsed map[string]map[string]any
}

func newSourceFiles(cwd string, files []string) *sourceFiles {
	return &sourceFiles{cwd: cwd, files: files, parsed: map[string]map[string]any{}}
}

func (s *sourceFiles) raw(file string) map[string]any {
	if m, ok := s.parsed[file]; ok {
		return m
	}
	var m map[string]any
	if data, err := os.ReadFile(file); err == nil {
		_ = yaml.Unmarshal(data, &m) // the loader already parsed it; a failure here only loses attribution
	}
	s.parsed[file] = m
	return m
}

// trimIndex drops a trailing list index ("files[2]" -> "files"); by hand
// rather than with a package-level regexp, which every devmtls start would
// compile.
func trimIndex(k string) string {
	body, ok := strings.CutSuffix(k, "]")
	if !ok {
		return k
	}
	i := strings.LastIndexByte(body, '[')
	if i < 0 || !digits.Only(body[i+1:]) {
		return k
	}
	return body[:i]
}

// splitPath turns "services.my.svc.x-devmtls.files.cert" into the service
// name ("" for top-level fields) and the keys below x-devmtls, dropping list
// indexes.
func splitPath(p string) (service string, keys []string) {
	marker := Extension
	if rest, ok := strings.CutPrefix(p, "services."); ok {
		i := strings.Index(rest, "."+Extension)
		if i < 0 {
			return "", nil
		}
		service, p = rest[:i], rest[i+1:]
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(p, marker), ".")
	if rest == "" {
		return service, nil
	}
	for _, k := range strings.Split(rest, ".") {
		keys = append(keys, trimIndex(k))
	}
	return service, keys
}

// attribute wraps a FieldError in a ConfigError naming the file it came from.
func (s *sourceFiles) attribute(err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	service, keys := splitPath(fe.Path)
	file := ""
	// The deepest key path present wins, so an unknown key or a bad value is
	// found in the file that has it even when another file sets x-devmtls too.
	for depth := len(keys); depth >= 0 && file == ""; depth-- {
		for i := len(s.files) - 1; i >= 0 && file == ""; i-- {
			file = s.find(s.files[i], service, keys[:depth], 0)
		}
	}
	if file == "" && service != "" {
		// A combination error (e.g. two settings that clash) may come from
		// the top-level defaults.
		for i := len(s.files) - 1; i >= 0 && file == ""; i-- {
			file = s.find(s.files[i], "", nil, 0)
		}
	}
	if file == "" && len(s.files) > 0 {
		file = s.files[0]
	}
	return &ConfigError{File: s.display(file), Field: fe}
}

// find returns file (or the file an extends chain leads to) if it holds the
// x-devmtls key path for service, else "".
func (s *sourceFiles) find(file, service string, keys []string, hops int) string {
	m := s.raw(file)
	if m == nil || hops > 8 {
		return ""
	}
	var node any = m
	if service != "" {
		svc, ok := lookupKey(node, "services", service)
		if !ok {
			return ""
		}
		if _, ok := lookupKey(svc, Extension); !ok {
			return s.followExtends(file, svc, keys, hops)
		}
		node = svc
	}
	node, ok := lookupKey(node, Extension)
	if !ok {
		return ""
	}
	if _, ok := lookupKey(node, keys...); ok {
		return file
	}
	return ""
}

func (s *sourceFiles) followExtends(file string, svc any, keys []string, hops int) string {
	ext, ok := lookupKey(svc, "extends")
	if !ok {
		return ""
	}
	target, base := file, ""
	switch e := ext.(type) {
	case string:
		base = e
	case map[string]any:
		base, _ = e["service"].(string)
		if f, ok := e["file"].(string); ok && f != "" {
			target = f
			if !filepath.IsAbs(f) {
				target = filepath.Join(filepath.Dir(file), f)
			}
		}
	}
	if base == "" {
		return ""
	}
	return s.find(target, base, keys, hops+1)
}

func lookupKey(node any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[k]; !ok {
			return nil, false
		}
	}
	return node, true
}

// display shows file relative to the working directory when it is inside it,
// the way compose users typed it.
func (s *sourceFiles) display(file string) string {
	if rel, err := filepath.Rel(s.cwd, file); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return file
}
