// Package certs makes and keeps an environment's dev credentials: the
// keypairs, the trust anchor and the files services read them from.
//
// A Store owns one environment directory (.devmtls). Ensure creates the
// credentials on first use and renews them when they expire, near expiry or
// when the environment's names change; Rotate replaces them; Load only reads.
// Two modes exist: shared, one self-signed keypair that is its own trust
// anchor (pinning), and ca, a name-constrained development CA with one leaf
// per service. The files keep the names services read in the cluster — cert,
// key, ca and key+cert (FileSet) — and ExportFiles renders them in other
// layouts (postgres, pkcs12, pkcs8-der).
//
// Every write happens under a file lock and goes into a fresh generation
// directory that one rename of ..data makes current (internal/generation), so
// any number of devmtls processes may share a directory and a reader never
// sees a key that does not match its certificate. The directory is untrusted
// input: every access goes through internal/envdir, which refuses links and
// directories of other users. Live is the credentials as a source that
// follows those changes, for listeners that run while they happen.
package certs
