package certs

import (
	"slices"
	"testing"
)

// TestFileSetKeysNameEveryField: each key reaches its own field, in the
// order Values lists them, and no other key reaches any.
func TestFileSetKeysNameEveryField(t *testing.T) {
	var s FileSet
	for _, k := range FileSetKeys() {
		f := s.Field(k)
		if f == nil {
			t.Fatalf("key %s names no field", k)
		}
		*f = "value of " + k
	}
	want := []string{"value of cert", "value of key", "value of ca", "value of key_cert"}
	if !slices.Equal(s.Values(), want) {
		t.Errorf("Values() = %q, want %q", s.Values(), want)
	}
	if s.Field("key+cert") != nil || s.Field("") != nil {
		t.Error("a key that is not one of FileSetKeys names a field")
	}
	if d := DefaultFileNames(); !slices.Equal(d.Values(), []string{FileCert, FileKey, FileCA, FileKeyCert}) {
		t.Errorf("DefaultFileNames() = %+v", d)
	}
}
