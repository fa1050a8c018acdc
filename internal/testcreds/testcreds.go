// Package testcreds sets up an environment's dev credentials for tests,
// through the real certs.Store, so the in-process tests of cmd/devmtls and
// the end-to-end tests under test/ prepare them the same way.
package testcreds

import (
	"context"
	"testing"
	"time"

	"github.com/devmtls/devmtls/certs"
)

// Ensure creates (or loads) the credentials of the environment directory dir.
func Ensure(t testing.TB, dir string, req certs.Request) *certs.Credentials {
	t.Helper()
	res, err := (&certs.Store{Dir: dir}).Ensure(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Credentials
}

// Expire replaces the environment's credentials with ones that expired a
// month ago, made with the store's clock moved back.
func Expire(t testing.TB, envDir string) *certs.Credentials {
	t.Helper()
	past := time.Now().Add(-60 * 24 * time.Hour)
	res, err := (&certs.Store{Dir: envDir, Now: func() time.Time { return past }}).Rotate(context.Background(), certs.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Credentials.NotAfter.Before(time.Now()) {
		t.Fatalf("test setup: credentials valid until %s", res.Credentials.NotAfter)
	}
	return res.Credentials
}
