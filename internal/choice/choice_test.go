package choice

import (
	"strings"
	"testing"
)

type color string

func TestParse(t *testing.T) {
	known := []color{"red", "green"}
	aliases := map[string]color{"vert": "green"}
	for in, want := range map[string]color{"red": "red", " GREEN ": "green", "Vert": "green"} {
		got, err := Parse("color", in, known, aliases)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := Parse("color", "blue", known, aliases)
	if err == nil || !strings.Contains(err.Error(), `unknown color "blue": use one of red, green`) {
		t.Errorf("Parse(blue): got %v", err)
	}
}
