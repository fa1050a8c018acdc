// Package digits checks strings of ASCII digits: the one test the hand-written
// matchers that replaced package-level regexps (compiled at every devmtls
// start) have in common.
package digits

// Only reports whether s is one or more ASCII digits and nothing else.
func Only(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
