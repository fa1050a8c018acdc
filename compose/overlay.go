package compose

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/devmtls/devmtls/certs"
	"go.yaml.in/yaml/v4"
)

// OverlayFile is the overlay's name inside the environment directory.
const OverlayFile = "compose.override.yaml"

// CopiesDir is the directory, inside the environment directory, that holds
// each service's own copy of its credential files: CopiesDir/<service>/mtls
// (mounted at the service's mount_path) and CopiesDir/<service>/postgres.
const CopiesDir = "compose"

// CredentialsLabel is the container label carrying a digest of the
// certificates a service was given. It is part of the service's compose
// configuration, so compose recreates exactly the containers whose
// credentials changed, and `devmtls status` can tell a stale container.
const CredentialsLabel = "dev.devmtls.credentials"

// HostDockerInternal maps host.docker.internal to the host on Linux, where
// Docker does not define it (Docker Desktop does).
const HostDockerInternal = "host.docker.internal:host-gateway"

// Mount is one read-only directory bind mount of a service's credentials.
type Mount struct {
	Source string `json:"source"` // absolute host directory
	Target string `json:"target"` // absolute container directory
}

// copyFile is one file in a mounted directory.
type copyFile struct {
	name   string
	data   []byte
	secret bool
}

// mountDir is one mounted directory and the files it holds.
type mountDir struct {
	Mount
	// rel is Source relative to the environment directory, slash-separated.
	rel   string
	files []copyFile
}

// ServicePlan is what one service gets.
type ServicePlan struct {
	Service Service
	// Owner owns the service's copies when HasOwner; otherwise they keep the
	// uid of the devmtls process.
	Owner    Owner
	HasOwner bool
	Mounts   []Mount
	// Env are the variables naming the mounted files.
	Env map[string]string
	// Digest identifies the service's certificate and trust anchor; it is the
	// value of CredentialsLabel.
	Digest string

	dirs   []mountDir
	inputs string // digest of everything the copies are made from
}

// Plan is the overlay for a project and the per-service copies it mounts.
type Plan struct {
	EnvDir   string
	Project  *Project
	Services []ServicePlan
	// Relays are the relay services of the project's forwards.
	Relays []Relay
	// Overlay is the overlay's YAML.
	Overlay []byte
}

// OverlayPath is where the overlay is written.
func (p *Plan) OverlayPath() string { return filepath.Join(p.EnvDir, OverlayFile) }

// NewPlan computes, without touching the disk, the copies and the overlay
// that give every opted-in service of p the credentials creds and that add
// the relays of its forwards (one per forward; nil when it declares none).
func NewPlan(p *Project, creds *certs.Credentials, envDir string, relays []Relay) (*Plan, error) {
	absDir, err := filepath.Abs(envDir)
	if err != nil {
		return nil, err
	}
	plan := &Plan{EnvDir: absDir, Project: p, Relays: relays}
	for _, svc := range p.Services {
		sp, err := planService(svc, creds, absDir)
		if err != nil {
			return nil, err
		}
		plan.Services = append(plan.Services, sp)
	}
	plan.Overlay, err = plan.render()
	if err != nil {
		return nil, err
	}
	return plan, nil
}

func planService(svc Service, creds *certs.Credentials, envDir string) (ServicePlan, error) {
	id, err := creds.Service(svc.Name)
	if err != nil {
		return ServicePlan{}, err
	}
	sp := ServicePlan{Service: svc, Env: svc.Environment()}
	sp.Owner, sp.HasOwner = svc.Owner()

	base := filepath.Join(envDir, CopiesDir, svc.Name)
	rel := CopiesDir + "/" + svc.Name
	main := mountDir{Mount: Mount{Source: filepath.Join(base, mainCopy), Target: svc.MountPath}, rel: rel + "/" + mainCopy}
	keyCert := append(slices.Clone(id.KeyPEM), id.CertPEM...)
	main.files = []copyFile{
		{svc.Files.Cert, id.CertPEM, false},
		{svc.Files.Key, id.KeyPEM, true},
		{svc.Files.CA, creds.CAPEM, false},
		{svc.Files.KeyCert, keyCert, true},
	}
	// The extra formats are the export layouts, under the same file names.
	exported := func(into *mountDir, f certs.Format) error {
		files, err := creds.ExportFiles(id, f, svc.PKCS12Password)
		if err != nil {
			return fmt.Errorf("service %s: %w", svc.Name, err)
		}
		for _, ef := range files {
			into.files = append(into.files, copyFile{ef.Name, ef.Data, ef.Secret})
		}
		return nil
	}
	for _, f := range []certs.Format{certs.FormatPKCS12, certs.FormatPKCS8DER} {
		if svc.HasFormat(f) {
			if err := exported(&main, f); err != nil {
				return ServicePlan{}, err
			}
		}
	}
	sp.dirs = append(sp.dirs, main)
	if svc.HasFormat(certs.FormatPostgres) {
		pg := mountDir{Mount: Mount{Source: filepath.Join(base, postgresCopy), Target: svc.PostgresMountPath}, rel: rel + "/" + postgresCopy}
		if err := exported(&pg, certs.FormatPostgres); err != nil {
			return ServicePlan{}, err
		}
		sp.dirs = append(sp.dirs, pg)
	}
	for _, d := range sp.dirs {
		sp.Mounts = append(sp.Mounts, d.Mount)
	}

	h := sha256.New()
	h.Write(id.Certificate.Raw)
	h.Write(creds.CA.Raw)
	sp.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))[:32]

	// The copies are rewritten only when something they are made of changed.
	// PKCS#12 encoding is salted, so comparing file contents would rewrite the
	// keystore on every run; the inputs are compared instead.
	in := sha256.New()
	fmt.Fprintf(in, "v1\x00%s\x00%v\x00%s\x00", sp.Owner, sp.HasOwner, svc.PKCS12Password)
	in.Write(id.CertPEM)
	in.Write(id.KeyPEM)
	in.Write(creds.CAPEM)
	for _, d := range sp.dirs {
		fmt.Fprintf(in, "\x00%s", d.Source)
		for _, f := range d.files {
			fmt.Fprintf(in, "\x00%s\x00%v", f.name, f.secret)
		}
	}
	sp.inputs = hex.EncodeToString(in.Sum(nil))
	return sp, nil
}

// overlayMap is the overlay as a plain map: for every opted-in service,
// read-only long-form bind mounts with absolute sources, the variables naming
// the files, host.docker.internal, the credentials label and a dependency on
// the relays; and the relays. No top-level name: or version:, which
// docker-compose v1 rejects or compares.
func (p *Plan) overlayMap() map[string]any {
	services := p.relayServices()
	for _, sp := range p.Services {
		var volumes []any
		for _, m := range sp.Mounts {
			volumes = append(volumes, map[string]any{"type": "bind", "source": m.Source, "target": m.Target, "read_only": true})
		}
		env := map[string]any{}
		for k, v := range sp.Env {
			env[k] = v
		}
		svc := map[string]any{
			"volumes": volumes,
			"labels":  map[string]any{CredentialsLabel: sp.Digest},
		}
		if len(env) > 0 {
			svc["environment"] = env
		}
		if !sp.Service.HasHostDockerInternal {
			svc["extra_hosts"] = []any{HostDockerInternal}
		}
		if relays := p.relayNames(); len(relays) > 0 {
			svc["depends_on"] = relays
		}
		services[sp.Service.Name] = svc
	}
	return map[string]any{"services": services}
}

func (p *Plan) render() ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Generated by devmtls for compose project %q; do not edit.\n", p.Project.Name)
	buf.WriteString("# `devmtls up` rewrites it from the compose files' x-devmtls settings.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(quotedNode(p.overlayMap())); err != nil {
		return nil, fmt.Errorf("render the compose overlay: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// quotedNode turns a plain map into a YAML node tree with every string
// double-quoted, so YAML 1.1 parsers (docker-compose v1's PyYAML) and YAML 1.2
// parsers (compose-go) read the same strings: an unquoted "on" or "0755" would
// become a boolean or a number in one of them.
func quotedNode(v any) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Style: plainKeyStyle(k)}, quotedNode(x[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range x {
			n.Content = append(n.Content, quotedNode(e))
		}
		return n
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(x)}
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x, Style: yaml.DoubleQuotedStyle}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprint(v), Style: yaml.DoubleQuotedStyle}
}

// plainKeyStyle keeps ordinary keys readable and quotes anything unusual.
func plainKeyStyle(k string) yaml.Style {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.", r)) {
			return yaml.DoubleQuotedStyle
		}
	}
	if k == "" || k[0] >= '0' && k[0] <= '9' || k[0] == '-' || k[0] == '.' {
		return yaml.DoubleQuotedStyle
	}
	switch strings.ToLower(k) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~":
		return yaml.DoubleQuotedStyle
	}
	return 0
}
