package compose

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

const refreshProject = `
services:
  api:
    image: x
    x-devmtls: {files: {cert: tls.crt}}
  db:
    image: x
    x-devmtls:
      formats: [postgres, pkcs12, pkcs8-der]
      pkcs12: {password: "s3cret"}
  docs:
    image: x
    x-devmtls: false
`

// TestRefreshCopiesFollowsNewCredentials: after a rotation, RefreshCopies
// remakes the copies exactly as the next devmtls up would (that up then finds
// nothing to write), inside the mounted directories, without the project.
func TestRefreshCopiesFollowsNewCredentials(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": refreshProject})
	p, _, plan := planFor(t, dir, LoadOptions{})
	ctx := context.Background()
	if _, err := plan.Write(ctx); err != nil {
		t.Fatal(err)
	}
	envDir := filepath.Join(dir, ".devmtls")
	mtls := filepath.Join(envDir, CopiesDir, "db", "mtls")
	before, _ := os.Stat(mtls)

	res, err := (&certs.Store{Dir: envDir}).Rotate(ctx, p.CertsRequest())
	if err != nil {
		t.Fatal(err)
	}
	updated, err := RefreshCopies(ctx, envDir, res.Credentials)
	if err != nil || !slices.Equal(updated, []string{"api", "db"}) {
		t.Fatalf("RefreshCopies: %v, %v", updated, err)
	}
	for path, want := range map[string][]byte{
		"api/mtls/tls.crt":   res.Credentials.Top.CertPEM,
		"db/mtls/key":        res.Credentials.Top.KeyPEM,
		"db/postgres/cert":   res.Credentials.Top.CertPEM,
		"db/mtls/key+cert":   append(slices.Clone(res.Credentials.Top.KeyPEM), res.Credentials.Top.CertPEM...),
		"db/postgres/cacert": res.Credentials.CAPEM,
	} {
		if got, err := os.ReadFile(filepath.Join(envDir, CopiesDir, path)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s does not hold the new credentials (%v)", path, err)
		}
	}
	for _, f := range []string{"keystore.p12", "truststore.p12", "cert.der", "key.der", "ca.der"} {
		if _, err := os.Stat(filepath.Join(mtls, f)); err != nil {
			t.Errorf("format file %s: %v", f, err)
		}
	}
	if after, _ := os.Stat(mtls); !os.SameFile(before, after) {
		t.Error("the mounted directory was replaced")
	}
	if _, err := os.Stat(filepath.Join(envDir, CopiesDir, "docs")); !os.IsNotExist(err) {
		t.Error("an opted-out service got copies")
	}

	// The next devmtls up plans the same copies and writes none.
	plan2, err := NewPlan(p, res.Credentials, envDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	wr, err := plan2.Write(ctx)
	if err != nil || len(wr.Updated) != 0 {
		t.Fatalf("devmtls up after a refresh rewrote %v (%v): the recipe differs from the plan", wr.Updated, err)
	}
	if updated, err := RefreshCopies(ctx, envDir, res.Credentials); err != nil || len(updated) != 0 {
		t.Fatalf("a second refresh: %v, %v", updated, err)
	}
}

func TestRefreshCopiesWithoutCopiesDoesNothing(t *testing.T) {
	dir := t.TempDir()
	res, err := (&certs.Store{Dir: filepath.Join(dir, ".devmtls")}).Ensure(context.Background(), certs.Request{})
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{filepath.Join(dir, ".devmtls"), filepath.Join(dir, "missing")} {
		if updated, err := RefreshCopies(context.Background(), env, res.Credentials); err != nil || updated != nil {
			t.Errorf("%s: %v, %v", env, updated, err)
		}
	}
}

// TestDoctoredRecipeIsRefused: the record is read from an untrusted
// directory; a recipe naming a path instead of a file name stops the refresh.
func TestDoctoredRecipeIsRefused(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": refreshProject})
	_, creds, plan := planFor(t, dir, LoadOptions{})
	if _, err := plan.Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, ".devmtls", CopiesDir, recordFile)
	data, _ := os.ReadFile(rec)
	os.WriteFile(rec, bytes.Replace(data, []byte(`"cert": "tls.crt"`), []byte(`"cert": "../../escape"`), 1), 0o600)
	_, err := RefreshCopies(context.Background(), filepath.Join(dir, ".devmtls"), creds)
	if err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), rec) {
		t.Fatalf("got %v", err)
	}
}

// TestLiveCredentialsRenewAndBringCopiesAlong: a forward's live source that
// runs past the renewal point (the store's clock moved, no sleeping) renews
// the credentials and rewrites the copies mounted in the containers.
func TestLiveCredentialsRenewAndBringCopiesAlong(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": refreshProject})
	_, creds, plan := planFor(t, dir, LoadOptions{})
	ctx := context.Background()
	if _, err := plan.Write(ctx); err != nil {
		t.Fatal(err)
	}
	now := creds.RenewAt().Add(time.Hour)
	store := &certs.Store{Dir: plan.EnvDir, Now: func() time.Time { return now }}
	var log strings.Builder
	live, err := LiveCredentials(store, creds, func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) })
	if err != nil {
		t.Fatal(err)
	}
	live.Poll(ctx)
	renewed := live.Current()
	if renewed.Fingerprint == creds.Fingerprint {
		t.Fatalf("not renewed past the renewal point:\n%s", log.String())
	}
	got, err := os.ReadFile(filepath.Join(plan.EnvDir, CopiesDir, "db", "postgres", "cert"))
	if err != nil || !bytes.Equal(got, renewed.Top.CertPEM) {
		t.Fatalf("the copies do not hold the renewed certificate (%v):\n%s", err, log.String())
	}
	for _, want := range []string{"dev credentials: renewed", "dev credentials: brought the compose copies of api, db up to date"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// TestRefreshCopiesIgnoresSupersededCredentials: a refresh for credentials
// that are no longer the environment's (a second rotation came first) leaves
// the copies of the newer ones alone.
func TestRefreshCopiesIgnoresSupersededCredentials(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": refreshProject})
	p, old, plan := planFor(t, dir, LoadOptions{})
	ctx := context.Background()
	if _, err := plan.Write(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := (&certs.Store{Dir: plan.EnvDir}).Rotate(ctx, p.CertsRequest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RefreshCopies(ctx, plan.EnvDir, res.Credentials); err != nil {
		t.Fatal(err)
	}
	if updated, err := RefreshCopies(ctx, plan.EnvDir, old); err != nil || len(updated) != 0 {
		t.Fatalf("a refresh for superseded credentials wrote %v (%v)", updated, err)
	}
	if got, _ := os.ReadFile(filepath.Join(plan.EnvDir, CopiesDir, "api", "mtls", "tls.crt")); !bytes.Equal(got, res.Credentials.Top.CertPEM) {
		t.Error("the copies no longer hold the current credentials")
	}
}
