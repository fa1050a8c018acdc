package compose

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The small strict decoder x-devmtls is read with: compose-go hands the
// extension over as plain YAML values (maps, lists, strings, numbers), and
// every key is decoded by a function of its own, so an unknown key, a value
// of the wrong type or a bad value is reported with its place in the file.

// FieldError is a problem with one x-devmtls field. Path is the field's place
// in the compose file, e.g. "services.api.x-devmtls.mount_path".
type FieldError struct {
	Path    string
	Problem string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Problem }

func fieldErr(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)}
}

// describe names a YAML value's type the way a compose user thinks of it.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing (null)"
	case bool:
		return fmt.Sprintf("a boolean (%v)", x)
	case string:
		return fmt.Sprintf("a string (%q)", x)
	case int, int64, uint64, float64, int32, uint32, uint, float32:
		return fmt.Sprintf("a number (%v)", x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// fieldDecoder decodes one key of an x-devmtls mapping.
type fieldDecoder func(path string, v any) error

// decodeMapping runs the decoder of each key, in sorted key order so the first
// error reported is stable, and rejects keys no decoder knows.
func decodeMapping(path string, v any, decoders map[string]fieldDecoder, hint func(key string) string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fieldErr(path, "must be a mapping, got %s", describe(v))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		dec, ok := decoders[k]
		if !ok {
			msg := fmt.Sprintf("unknown key (known keys: %s)", strings.Join(slices.Sorted(maps.Keys(decoders)), ", "))
			if h := hint(k); h != "" {
				msg = h
			}
			return fieldErr(path+"."+k, "%s", msg)
		}
		if err := dec(path+"."+k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func asString(path string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fieldErr(path, "must be a string, got %s", describe(v))
	}
	return s, nil
}

// asParsed reads a string and parses it with parse, whose error becomes the
// field's problem.
func asParsed[T any](path string, v any, parse func(string) (T, error)) (T, error) {
	var zero T
	s, err := asString(path, v)
	if err != nil {
		return zero, err
	}
	t, err := parse(s)
	if err != nil {
		return zero, fieldErr(path, "%v", err)
	}
	return t, nil
}

func asBool(path string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fieldErr(path, "must be true or false, got %s", describe(v))
	}
	return b, nil
}

func asStringList(path string, v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fieldErr(path, "must be a list of strings, got %s", describe(v))
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", path, i), "must be a string, got %s", describe(e))
		}
		out = append(out, s)
	}
	return out, nil
}

// keyedStrings decodes a mapping of the given keys to strings (x-devmtls files
// and env), each value checked by conv, into into.
func keyedStrings(keys []string, into map[string]string, conv func(string, any) (string, error)) map[string]fieldDecoder {
	out := map[string]fieldDecoder{}
	for _, k := range keys {
		out[k] = func(p string, v any) error {
			s, err := conv(p, v)
			into[k] = s
			return err
		}
	}
	return out
}

// noHint is decodeMapping's hint for mappings whose unknown keys need no more
// than the list of known ones.
func noHint(string) string { return "" }
