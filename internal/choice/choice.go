// Package choice parses a value that must be one of a fixed set of names
// (an export format, an environment format), so every such flag is read the
// same way and refused with the same sentence.
package choice

import (
	"fmt"
	"slices"
	"strings"
)

// Parse returns the member of known that s names, ignoring case and
// surrounding space; aliases maps other accepted spellings (lower case) to
// members. what names the kind of value in the error ("format").
func Parse[T ~string](what, s string, known []T, aliases map[string]T) (T, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if a, ok := aliases[v]; ok {
		return a, nil
	}
	if slices.Contains(known, T(v)) {
		return T(v), nil
	}
	names := make([]string, 0, len(known))
	for _, k := range known {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("unknown %s %q: use one of %s", what, s, strings.Join(names, ", "))
}
