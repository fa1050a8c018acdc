package fileacl

import (
	"regexp"
	"testing"
)

// sidRE is the rule isSID checks by hand, kept as its oracle.
var sidRE = regexp.MustCompile(`^S-1-[0-9]+(-[0-9]+)+$`)

var sidCases = []string{"", "S-1-5-21-1004336348-1177238915-682003330-1001", "S-1-5", "S-1-5-", "S-1--5", "S-1-5-x",
	"s-1-5-21", "S-2-5-21", "S-1-5-21\n", " S-1-5-21", "S-1-5-21-", "S-1-١-2"}

func TestIsSIDMatchesRegexp(t *testing.T) {
	for _, s := range sidCases {
		if got, want := isSID(s), sidRE.MatchString(s); got != want {
			t.Errorf("isSID(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

// FuzzIsSID checks isSID against its regexp on arbitrary strings.
func FuzzIsSID(f *testing.F) {
	for _, s := range sidCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isSID(s), sidRE.MatchString(s); got != want {
			t.Fatalf("isSID(%q) = %v, regexp says %v", s, got, want)
		}
	})
}
