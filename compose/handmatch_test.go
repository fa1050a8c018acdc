package compose

import (
	"regexp"
	"testing"
)

// The regexps trimIndex and splitOwner replaced, kept as their oracles.
var (
	indexSuffixRE = regexp.MustCompile(`\[[0-9]+\]$`)
	ownerRE       = regexp.MustCompile(`^([0-9]{1,10})(?::([0-9]{1,10}))?$`)
)

var handCases = []string{"", "files", "files[2]", "files[]", "files[a]", "a[1][2]", "[3]", "x[12]y", "x]", "x[", "x[1", "x[-1]",
	"0", "999", "999:999", "1234567890", "12345678901", "1:12345678901", "1:", ":1", "1::2", "1:2:3", " 1", "1\n", "a:b", "١:١"}

func TestTrimIndexMatchesRegexp(t *testing.T) {
	for _, s := range handCases {
		if got, want := trimIndex(s), indexSuffixRE.ReplaceAllString(s, ""); got != want {
			t.Errorf("trimIndex(%q) = %q, regexp gives %q", s, got, want)
		}
	}
}

func TestSplitOwnerMatchesRegexp(t *testing.T) {
	for _, s := range handCases {
		checkSplitOwner(t, s)
	}
}

// FuzzHandMatchers checks both hand-written matchers against their regexps
// on arbitrary strings.
func FuzzHandMatchers(f *testing.F) {
	for _, s := range handCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := trimIndex(s), indexSuffixRE.ReplaceAllString(s, ""); got != want {
			t.Fatalf("trimIndex(%q) = %q, regexp gives %q", s, got, want)
		}
		checkSplitOwner(t, s)
	})
}

func checkSplitOwner(t *testing.T, s string) {
	t.Helper()
	uid, gid, ok := splitOwner(s)
	m := ownerRE.FindStringSubmatch(s)
	if ok != (m != nil) || ok && (uid != m[1] || gid != m[2]) {
		t.Errorf("splitOwner(%q) = %q, %q, %v; regexp gives %q", s, uid, gid, ok, m)
	}
}
