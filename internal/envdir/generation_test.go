package envdir

import (
	"regexp"
	"testing"
	"time"
)

// generationRE is the rule IsGeneration checks by hand, kept as its oracle.
var generationRE = regexp.MustCompile(`^\.\.[0-9]{4}_[0-9]{2}_[0-9]{2}_[0-9]{2}_[0-9]{2}_[0-9]{2}\.[0-9]{9}$`)

var generationCases = []string{"", "..", "..2024_01_02_03_04_05.123456789", "..2024_01_02_03_04_05.12345678",
	"..2024_01_02_03_04_05.1234567890", ".x2024_01_02_03_04_05.123456789", "..2024-01_02_03_04_05.123456789",
	"..2024_01_02_03_04_05_123456789", "..2024_01_02_03_04_05.12345678a", "..2024_01_02_03_04_05.123456789\n",
	"data", "..data", "..0000_00_00_00_00_00.000000000"}

func TestIsGenerationMatchesRegexp(t *testing.T) {
	cases := append(generationCases, ".."+time.Now().UTC().Format(GenerationLayout))
	for _, s := range cases {
		if got, want := IsGeneration(s), generationRE.MatchString(s); got != want {
			t.Errorf("IsGeneration(%q) = %v, regexp says %v", s, got, want)
		}
	}
	if !IsGeneration(".." + time.Now().UTC().Format(GenerationLayout)) {
		t.Error("a name made with GenerationLayout is not a generation")
	}
}

// FuzzIsGeneration checks IsGeneration against its regexp on arbitrary strings.
func FuzzIsGeneration(f *testing.F) {
	for _, s := range generationCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := IsGeneration(s), generationRE.MatchString(s); got != want {
			t.Fatalf("IsGeneration(%q) = %v, regexp says %v", s, got, want)
		}
	})
}
