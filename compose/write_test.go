package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestOnlyRecordedCopiesAreRemoved: a service that leaves the project loses
// the copies devmtls recorded writing; whatever else is in compose/ stays.
func TestOnlyRecordedCopiesAreRemoved(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  api: {image: x}\n  worker: {image: x}\n"})
	_, _, plan := planFor(t, dir, LoadOptions{})
	ctx := context.Background()
	if _, err := plan.Write(ctx); err != nil {
		t.Fatal(err)
	}
	copies := filepath.Join(dir, ".devmtls", CopiesDir)
	notes := filepath.Join(copies, "notes", "todo.txt")
	if err := os.MkdirAll(filepath.Dir(notes), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(notes, []byte("mine\n"), 0o600)

	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  api: {image: x}\n"), 0o644)
	_, _, plan = planFor(t, dir, LoadOptions{})
	if _, err := plan.Write(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(copies, "worker")); !os.IsNotExist(err) {
		t.Errorf("the copies of a service that left remain: %v", err)
	}
	if data, err := os.ReadFile(notes); err != nil || string(data) != "mine\n" {
		t.Errorf("a directory devmtls did not write was touched: %q, %v", data, err)
	}
}

// TestFlatCopiesMoveIntoGenerations: copies an older devmtls wrote (plain
// files, no record) are taken over in place: the mounted directory stays the
// same inode, its files become generation links.
func TestFlatCopiesMoveIntoGenerations(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  api: {image: x}\n"})
	_, creds, plan := planFor(t, dir, LoadOptions{})
	mtls := filepath.Join(dir, ".devmtls", CopiesDir, "api", "mtls")
	if err := os.MkdirAll(mtls, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"cert": creds.Top.CertPEM, "key": creds.Top.KeyPEM, "ca": creds.CAPEM, "old.p12": []byte("x")} {
		os.WriteFile(filepath.Join(mtls, name), data, 0o600)
	}
	os.WriteFile(filepath.Join(mtls, "..", inputsFile), []byte("older\n"), 0o600)
	before, _ := os.Stat(mtls)
	if _, err := plan.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(mtls)
	if !os.SameFile(before, after) {
		t.Error("the mounted directory was replaced")
	}
	for _, name := range []string{"cert", "key", "ca", "key+cert"} {
		if target, err := os.Readlink(filepath.Join(mtls, name)); err != nil || target != "..data/"+name {
			t.Errorf("%s -> %q, %v", name, target, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(mtls, "old.p12")); !os.IsNotExist(err) {
		t.Errorf("a file the older devmtls wrote and this one no longer does remains: %v", err)
	}
}
