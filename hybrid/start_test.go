package hybrid

import (
	"regexp"
	"testing"
)

// startPattern is the rule isProcessStart checks by hand, kept here as the
// oracle its tests (and FuzzState) compare against.
var startPattern = regexp.MustCompile(`^[0-9]{1,24}(\.[0-9]{1,9})?$`)

// startCases are edges of the pattern: lengths at and past each bound, empty
// parts, signs, spaces, non-ASCII digits and a trailing newline.
var startCases = []string{"", "0", "123456", "1.5", "1.", ".5", "1..5", "1.2.3", "+1", "-1", " 1", "1 ", "1\n",
	"123456789012345678901234", "1234567890123456789012345", "1.123456789", "1.1234567890", "١٢", "0x1f", "1e9"}

func TestIsProcessStartMatchesPattern(t *testing.T) {
	for _, s := range startCases {
		if got, want := isProcessStart(s), startPattern.MatchString(s); got != want {
			t.Errorf("isProcessStart(%q) = %v, pattern says %v", s, got, want)
		}
	}
}

// FuzzIsProcessStart checks the hand-written matcher against the pattern on
// arbitrary strings.
func FuzzIsProcessStart(f *testing.F) {
	for _, s := range startCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isProcessStart(s), startPattern.MatchString(s); got != want {
			t.Fatalf("isProcessStart(%q) = %v, pattern says %v", s, got, want)
		}
	})
}
