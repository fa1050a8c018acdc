package fileacl

import "testing"

func TestOwnerOnlySDDL(t *testing.T) {
	got, err := OwnerOnlySDDL("S-1-5-21-3623811015-3361044348-30300820-1013")
	if err != nil {
		t.Fatal(err)
	}
	// One allow entry, full access, for that SID alone, nothing inherited.
	if want := "D:P(A;;FA;;;S-1-5-21-3623811015-3361044348-30300820-1013)"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range []string{"", "WD", "S-1-5-21-1)(A;;FA;;;WD", "S-1", "s-1-5-18", "S-1-5-18 "} {
		if sddl, err := OwnerOnlySDDL(bad); err == nil {
			t.Errorf("OwnerOnlySDDL(%q) = %q, want an error", bad, sddl)
		}
	}
}
