package hostenv

import (
	"regexp"
	"testing"
)

// varNameRE is the rule isVarName checks by hand, kept as its oracle.
var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var varNameCases = []string{"", "A", "_", "a1", "1a", "SSL_CERT_FILE", "A-B", "A B", "A\n", "é", "A.B", "Z9_", "__", "0"}

func TestIsVarNameMatchesRegexp(t *testing.T) {
	for _, s := range varNameCases {
		if got, want := isVarName(s), varNameRE.MatchString(s); got != want {
			t.Errorf("isVarName(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

// FuzzIsVarName checks isVarName against its regexp on arbitrary strings.
func FuzzIsVarName(f *testing.F) {
	for _, s := range varNameCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isVarName(s), varNameRE.MatchString(s); got != want {
			t.Fatalf("isVarName(%q) = %v, regexp says %v", s, got, want)
		}
	})
}
