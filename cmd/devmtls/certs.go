package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/devmtls/devmtls/certs"
	"github.com/spf13/cobra"
)

// specFlags are the flags that choose what credentials an environment has.
type specFlags struct {
	mode, keyType, validity, commonName string
	names                               []string
}

func (f *specFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "mode", "", "shared (one self-signed keypair, its own trust anchor) or ca (a name-constrained dev CA and one leaf per service); default: keep the current mode, else shared")
	fl.StringVar(&f.keyType, "key-type", "", "key algorithm: ecdsa-p256, ecdsa-p384, rsa2048, rsa4096 or ed25519; default: keep the current one, else ecdsa-p256")
	fl.StringVar(&f.validity, "validity", "", "certificate lifetime, e.g. 30d or 720h; default: keep the current one, else 30d")
	fl.StringVar(&f.commonName, "common-name", "", "subject common name; default: keep the current one, else devmtls")
	fl.StringArrayVar(&f.names, "name", nil, "extra DNS name or IP address for the certificate (repeatable; replaces the extra names given before)")
}

// request turns the flags into a certs.Request, naming the flag at fault.
func (f *specFlags) request(cmd *cobra.Command) (certs.Request, error) {
	var r certs.Request
	if f.mode != "" {
		m, err := certs.ParseMode(f.mode)
		if err != nil {
			return r, usageErrorf("--mode: %v", err)
		}
		r.Mode = m
	}
	if f.keyType != "" {
		k, err := certs.ParseKeyType(f.keyType)
		if err != nil {
			return r, usageErrorf("--key-type: %v", err)
		}
		r.KeyType = k
	}
	if f.validity != "" {
		v, err := certs.ParseValidity(f.validity)
		if err != nil {
			return r, usageErrorf("--validity: %v", err)
		}
		r.Validity = v
	}
	r.CommonName = f.commonName
	if cmd.Flags().Changed("name") {
		r.ExtraNames = []string{}
		for _, n := range f.names {
			for _, part := range strings.Split(n, ",") {
				if _, err := certs.NormalizeName(part); err != nil {
					return r, usageErrorf("--name: %v", err)
				}
				r.ExtraNames = append(r.ExtraNames, part)
			}
		}
	}
	return r, nil
}

// certsOptions backs `devmtls certs` and `devmtls certs rotate`.
type certsOptions struct {
	g      *globalOptions
	flags  specFlags
	rotate bool

	env *environment
	req certs.Request
}

func newCertsCmd(g *globalOptions) *cobra.Command {
	o := &certsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create or renew the dev credentials and summarise them",
		Long: `Make sure the environment has valid dev credentials, then print a summary.

Credentials are created on first use and renewed automatically when they have
expired, are within a third of their lifetime of expiring, or no longer cover
the environment's names. The files use the names services already read:
cert, key, ca and key+cert (HAProxy), in the environment directory (--dir).`,
		Example: `  devmtls certs
  devmtls certs --mode ca --key-type rsa2048 --validity 7d
  devmtls certs show --json
  devmtls certs export --format postgres --out ./pg-certs`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(c); err != nil {
				return err
			}
			return o.Run(c)
		},
	}
	o.flags.add(cmd)

	ro := &certsOptions{g: g, rotate: true}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the dev credentials now",
		Long: `Generate new dev credentials unconditionally, replacing the current ones — also
the way out when a credential file was damaged or changed by hand.

Running forwards (devmtls forward, the forwards of devmtls up, devmtls exec)
serve the new keypair from their next connection, within two seconds, and
trust only the new one. The compose copies are rewritten in their mounted
directories at once; devmtls up then recreates the containers, for services
that read their files only at start.`,
		Example: `  devmtls certs rotate
  devmtls certs rotate && devmtls up -d   # then recreate the containers that read their files at start
  devmtls certs rotate --key-type rsa2048 --validity 7d`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := ro.Complete(c); err != nil {
				return err
			}
			return ro.Run(c)
		},
	}
	ro.flags.add(rotate)
	cmd.AddCommand(rotate, newCertsShowCmd(g), newCertsExportCmd(g))
	return cmd
}

func (o *certsOptions) Complete(cmd *cobra.Command) error {
	var err error
	if o.env, err = o.g.credentialsEnvironment(cmd.Context()); err != nil {
		return err
	}
	o.req, err = o.flags.request(cmd)
	return err
}

func (o *certsOptions) Run(cmd *cobra.Command) error {
	res, err := o.env.ensureCredentials(cmd.Context(), o.req, o.rotate)
	if err != nil {
		return err
	}
	o.env.followCopies(cmd.Context(), res, o.g.stderr)
	printSummary(o.g.stdout, res)
	return nil
}

// printSummary tells the user in a few lines what they have and where.
func printSummary(w io.Writer, res *certs.Result) {
	c := res.Credentials
	switch res.Action {
	case certs.Created:
		fmt.Fprintf(w, "Created dev credentials in %s\n", c.Dir)
	case certs.Renewed:
		fmt.Fprintf(w, "Renewed dev credentials in %s (%s)\n", c.Dir, res.Reason)
	default:
		fmt.Fprintf(w, "Dev credentials in %s are up to date\n", c.Dir)
	}
	fmt.Fprintf(w, "  mode:     %s, %s\n", c.Mode, c.KeyType)
	fmt.Fprintf(w, "  names:    %s\n", strings.Join(c.Names, ", "))
	fmt.Fprintf(w, "  valid:    until %s (%s left; renewed automatically)\n", c.NotAfter.Local().Format("2006-01-02 15:04 MST"), humanDuration(time.Until(c.NotAfter)))
	fmt.Fprintf(w, "  files:    %s\n", strings.Join(relFiles(c), ", "))
}

// relFiles names the files the summary lists: the credential files, and in ca
// mode each service's directory (in shared mode every service uses the
// top-level files, so there is nothing more to name).
func relFiles(c *certs.Credentials) []string {
	out := certs.DefaultFileNames().Values()
	if c.Mode != certs.ModeCA {
		return out
	}
	for _, s := range c.Services {
		if id, err := c.Service(s); err == nil {
			rel, _ := filepath.Rel(c.Dir, filepath.Dir(id.Paths.Cert))
			out = append(out, filepath.ToSlash(rel)+"/")
		}
	}
	return out
}

func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return d.Round(time.Minute).String()
}

// certsShowOptions backs `devmtls certs show`.
type certsShowOptions struct {
	g    *globalOptions
	json bool
}

// certsShowJSON is the stable JSON shape of `devmtls certs show --json`.
type certsShowJSON struct {
	Dir         string                   `json:"dir"`
	Mode        certs.Mode               `json:"mode"`
	KeyType     certs.KeyType            `json:"key_type"`
	CommonName  string                   `json:"common_name"`
	Names       []string                 `json:"names"`
	NotBefore   time.Time                `json:"not_before"`
	NotAfter    time.Time                `json:"not_after"`
	Validity    string                   `json:"validity"`
	Fingerprint string                   `json:"fingerprint_sha256"`
	Files       certs.FileSet            `json:"files"`
	Services    map[string]certs.FileSet `json:"services,omitempty"`
}

func newCertsShowCmd(g *globalOptions) *cobra.Command {
	o := &certsShowOptions{g: g}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the dev credentials: names, validity, files",
		Long: `Show the environment's dev credentials without changing them: mode, key type,
common name, certificate names, validity, SHA-256 fingerprint and the paths of
the files (and of each service's leaf in ca mode).`,
		Example: `  devmtls certs show
  devmtls certs show --json | jq -r .fingerprint_sha256
  devmtls --dir ../shop/.devmtls certs show`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error { return o.Run(c) },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func (o *certsShowOptions) Run(cmd *cobra.Command) error {
	dir, err := o.g.envDir()
	if err != nil {
		return err
	}
	c, err := (&certs.Store{Dir: dir}).Load(cmd.Context())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s has no dev credentials yet; run `devmtls certs` to create them", dir)
		}
		return err
	}
	out := certsShowJSON{Dir: c.Dir, Mode: c.Mode, KeyType: c.KeyType, CommonName: c.CommonName, Names: c.Names,
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, Validity: certs.FormatValidity(c.Validity), Fingerprint: c.Fingerprint, Files: c.Top.Paths}
	if len(c.Services) > 0 && c.Mode == certs.ModeCA {
		out.Services = map[string]certs.FileSet{}
		for _, s := range c.Services {
			id, err := c.Service(s)
			if err != nil {
				return err
			}
			out.Services[s] = id.Paths
		}
	}
	if o.json {
		return writeJSON(o.g.stdout, out)
	}
	w := o.g.stdout
	fmt.Fprintf(w, "Environment:  %s\n", c.Dir)
	fmt.Fprintf(w, "Mode:         %s\n", c.Mode)
	fmt.Fprintf(w, "Key type:     %s\n", c.KeyType)
	fmt.Fprintf(w, "Common name:  %s\n", c.CommonName)
	fmt.Fprintf(w, "Names:        %s\n", strings.Join(c.Names, ", "))
	fmt.Fprintf(w, "Not before:   %s\n", c.NotBefore.Format(time.RFC3339))
	fmt.Fprintf(w, "Not after:    %s (%s left)\n", c.NotAfter.Format(time.RFC3339), humanDuration(time.Until(c.NotAfter)))
	fmt.Fprintf(w, "SHA-256:      %s\n", c.Fingerprint)
	fmt.Fprintf(w, "Files:\n  cert      %s\n  key       %s\n  ca        %s\n  key+cert  %s\n", c.Top.Paths.Cert, c.Top.Paths.Key, c.Top.Paths.CA, c.Top.Paths.KeyCert)
	for _, s := range slices.Sorted(maps.Keys(out.Services)) {
		fmt.Fprintf(w, "Service %s:\n  cert      %s\n  key       %s\n", s, out.Services[s].Cert, out.Services[s].Key)
	}
	return nil
}

// certsExportOptions backs `devmtls certs export`.
type certsExportOptions struct {
	g            *globalOptions
	format       string
	out          string
	service      string
	password     string
	passwordFile string

	parsed certs.Format
	env    *environment
}

func newCertsExportCmd(g *globalOptions) *cobra.Command {
	o := &certsExportOptions{g: g}
	cmd := &cobra.Command{
		Use:   "export --format FORMAT --out DIR",
		Short: "Write the dev credentials in another layout",
		Long: `Write the environment's dev credentials into DIR in the layout a consumer expects:

  pem        cert, key, ca
  haproxy    key+cert (crt) and ca (ca-file)
  postgres   cacert, cert, key (libpq sslrootcert/sslcert/sslkey)
  pkcs8-der  cert.der, key.der (PKCS#8), ca.der
  pkcs12     keystore.p12 and truststore.p12 for Java (password: --password, default changeit)

Keys are written 0600, certificates 0644. Files an earlier export did not write
are never overwritten.`,
		Example: `  devmtls certs export --format postgres --out ./pg-certs
  devmtls certs export --format pkcs12 --password-file secret.txt --out ./java`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(c.Context()); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "", "output layout: pem, haproxy, postgres, pkcs8-der or pkcs12 (required)")
	cmd.Flags().StringVar(&o.out, "out", "", "output directory, created 0700 if missing (required)")
	cmd.Flags().StringVar(&o.service, "service", "", "in ca mode, export this service's leaf instead of the host identity")
	cmd.Flags().StringVar(&o.password, "password", "", "PKCS#12 password (default changeit; visible to other local users in the process list, prefer --password-file)")
	cmd.Flags().StringVar(&o.passwordFile, "password-file", "", "read the PKCS#12 password from the first line of this file")
	return cmd
}

func (o *certsExportOptions) Complete(ctx context.Context) error {
	var err error
	if o.env, err = o.g.credentialsEnvironment(ctx); err != nil {
		return err
	}
	if o.passwordFile != "" {
		data, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return usageErrorf("--password-file: %v", err)
		}
		o.password = strings.TrimRight(strings.SplitN(string(data), "\n", 2)[0], "\r")
	}
	return nil
}

func (o *certsExportOptions) Validate() error {
	if o.format == "" {
		return usageErrorf("--format is required: use one of pem, haproxy, postgres, pkcs8-der, pkcs12")
	}
	f, err := certs.ParseFormat(o.format)
	if err != nil {
		return usageErrorf("--format: %v", err)
	}
	o.parsed = f
	if o.out == "" {
		return usageErrorf("--out is required: the directory to write the %s files into", f)
	}
	if (o.password != "" || o.passwordFile != "") && f != certs.FormatPKCS12 {
		return usageErrorf("--password only applies to --format pkcs12")
	}
	return nil
}

func (o *certsExportOptions) Run(cmd *cobra.Command) error {
	res, err := o.env.ensureCredentials(cmd.Context(), certs.Request{}, false)
	if err != nil {
		return err
	}
	c := res.Credentials
	id, err := c.Service(o.service)
	if err != nil {
		return err
	}
	files, err := c.ExportFiles(id, o.parsed, o.password)
	if err != nil {
		return err
	}
	written, err := certs.WriteExport(o.out, files)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.g.stdout, "Exported %s credentials to %s:\n", o.parsed, o.out)
	for _, p := range written {
		fmt.Fprintf(o.g.stdout, "  %s\n", filepath.Base(p))
	}
	if o.parsed == certs.FormatPKCS12 && o.password == "" {
		fmt.Fprintf(o.g.stdout, "The PKCS#12 password is %q.\n", certs.DefaultPKCS12Password)
	}
	return nil
}
