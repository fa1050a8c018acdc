package digits

import "testing"

func TestOnly(t *testing.T) {
	for s, want := range map[string]bool{
		"": false, "0": true, "0123456789": true, "12a": false, "-1": false, " 1": false, "1.5": false, "١": false,
	} {
		if got := Only(s); got != want {
			t.Errorf("Only(%q) = %v, want %v", s, got, want)
		}
	}
}
