package certs

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode says how an environment's identities are organised.
type Mode string

const (
	// ModeShared is one self-signed keypair for the whole environment, which
	// is also its own trust anchor (pinning), as most teams deploy mTLS.
	ModeShared Mode = "shared"
	// ModeCA is a throwaway development CA, name-constrained to the environment's
	// names, that signs one leaf per service so each service has its own identity.
	ModeCA Mode = "ca"
)

// ParseMode accepts "shared" or "ca".
func ParseMode(s string) (Mode, error) {
	switch Mode(strings.ToLower(strings.TrimSpace(s))) {
	case ModeShared:
		return ModeShared, nil
	case ModeCA:
		return ModeCA, nil
	}
	return "", fmt.Errorf("unknown mode %q: use shared or ca", s)
}

// DefaultValidity is short on purpose: dev credentials are throwaway and are
// renewed automatically, so a leaked one stops working within weeks.
const DefaultValidity = 30 * 24 * time.Hour

// DefaultCommonName is the subject CN when neither the user nor a stored
// environment chose one.
const DefaultCommonName = "devmtls"

// BaseNames are in every environment's certificate: they let host processes,
// published container ports and containers calling the host all verify.
func BaseNames() []string {
	return []string{"localhost", "127.0.0.1", "::1", "host.docker.internal"}
}

// LoopbackNames are the names a published container port is reached by from the
// host; in ca mode every service leaf carries them besides its service name.
func LoopbackNames() []string {
	return []string{"localhost", "127.0.0.1", "::1"}
}

// MaxValidity is the longest validity devmtls issues: the CA/Browser limit of
// 825 days.
const MaxValidity = 825 * 24 * time.Hour

// durationSyntax matches what time.ParseDuration accepts, whatever the size.
var durationSyntax = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))*$`)
})

// ParseValidity accepts Go durations ("720h") and whole days ("30d"), from 1h
// to MaxValidity.
func ParseValidity(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	tooLong := fmt.Errorf("invalid validity %q: it must be at most %dd, the longest lifetime many TLS stacks (notably Apple's) accept", s, MaxValidity/(24*time.Hour))
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		var ne *strconv.NumError
		switch {
		case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) && !strings.HasPrefix(days, "-"):
			return 0, tooLong
		case err != nil:
			return 0, fmt.Errorf("invalid validity %q: use a number of days such as 30d, or a duration such as 720h", s)
		case n > int64(MaxValidity/(24*time.Hour)):
			return 0, tooLong
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			if durationSyntax().MatchString(s) {
				// Well formed, yet not a time.Duration: too large for one.
				return 0, tooLong
			}
			return 0, fmt.Errorf("invalid validity %q: use a number of days such as 30d, or a duration such as 720h", s)
		}
	}
	if d < time.Hour {
		return 0, fmt.Errorf("invalid validity %q: it must be at least 1h", s)
	}
	if d > MaxValidity {
		return 0, tooLong
	}
	return d, nil
}

// FormatValidity prints a validity the way ParseValidity reads it back.
func FormatValidity(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// The patterns are compiled on first use, not in every process that starts
// (devmtls start-up, issue 19).
var (
	dnsLabel    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`) })
	serviceName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })
)

// NormalizeName checks one certificate name and returns its canonical form: DNS
// names lower-cased, IP addresses in their shortest form.
func NormalizeName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" {
		return "", fmt.Errorf("empty name")
	}
	if ip := net.ParseIP(n); ip != nil {
		return ip.String(), nil
	}
	n = strings.ToLower(strings.TrimSuffix(n, "."))
	if len(n) > 253 {
		return "", fmt.Errorf("invalid name %q: longer than 253 characters", name)
	}
	labels := strings.Split(n, ".")
	for i, l := range labels {
		if i == 0 && l == "*" && len(labels) > 1 {
			continue
		}
		if !dnsLabel().MatchString(l) {
			return "", fmt.Errorf("invalid name %q: not a DNS name or IP address", name)
		}
	}
	return n, nil
}

// NormalizeNames canonicalises, de-duplicates and sorts names (DNS names first,
// then IP addresses) so two sets can be compared with slices.Equal.
func NormalizeNames(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, err := NormalizeName(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b string) int {
		ai, bi := net.ParseIP(a) != nil, net.ParseIP(b) != nil
		if ai != bi {
			if ai {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out), nil
}

// ValidateServiceName checks a service name the way Compose does; in ca mode it
// also becomes a directory name under services/, so it must not escape it.
func ValidateServiceName(s string) error {
	if !serviceName().MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("invalid service name %q: use letters, digits, '.', '_' and '-'", s)
	}
	return nil
}

// Request says what the caller wants; zero fields keep what the environment
// already has (or the defaults for a new one), so `devmtls certs` with no flags
// never silently changes a mode or key type chosen earlier.
type Request struct {
	Mode       Mode          // "" keeps the stored mode (default shared)
	KeyType    KeyType       // "" keeps the stored key type (default ecdsa-p256)
	Validity   time.Duration // 0 keeps the stored validity (default 30 days)
	CommonName string        // "" keeps the stored CN (default "devmtls")
	// ExtraNames are added to the base names. nil keeps the stored extras; a
	// non-nil slice (even empty) replaces them.
	ExtraNames []string
	// Services get their own leaf in ca mode and their name in the shared
	// certificate. nil keeps the stored services; non-nil replaces them.
	Services []string
}

// Spec is a fully resolved description of an environment's credentials.
type Spec struct {
	Mode       Mode
	KeyType    KeyType
	Validity   time.Duration
	CommonName string
	ExtraNames []string // normalized
	Services   []string // sorted, unique
}

// Names is the full, normalized name set: base names, services and extras. It
// is the SAN list in shared mode and the name constraints in ca mode.
func (s Spec) Names() []string {
	all := append(append(BaseNames(), s.Services...), s.ExtraNames...)
	n, err := NormalizeNames(all)
	if err != nil {
		// Every part was validated by resolve; reaching this is a programming error.
		panic(err)
	}
	return n
}

// resolve fills the request's zero fields from the stored spec (if any) and the
// defaults, and validates everything.
func (r Request) resolve(stored *Spec) (Spec, error) {
	var s Spec
	if stored != nil {
		s = *stored
	}
	if r.Mode != "" {
		m, err := ParseMode(string(r.Mode))
		if err != nil {
			return Spec{}, err
		}
		s.Mode = m
	}
	if s.Mode == "" {
		s.Mode = ModeShared
	}
	if r.KeyType != "" {
		k, err := ParseKeyType(string(r.KeyType))
		if err != nil {
			return Spec{}, err
		}
		s.KeyType = k
	}
	if s.KeyType == "" {
		s.KeyType = DefaultKeyType
	}
	if r.Validity != 0 {
		s.Validity = r.Validity
	}
	if s.Validity == 0 {
		s.Validity = DefaultValidity
	}
	if r.Validity < 0 {
		return Spec{}, fmt.Errorf("invalid validity %s: it must be positive", r.Validity)
	}
	if r.CommonName != "" {
		s.CommonName = r.CommonName
	}
	if s.CommonName == "" {
		s.CommonName = DefaultCommonName
	}
	if len(s.CommonName) > 64 {
		return Spec{}, fmt.Errorf("invalid common name %q: at most 64 characters", s.CommonName)
	}
	if r.ExtraNames != nil {
		extras, err := NormalizeNames(r.ExtraNames)
		if err != nil {
			return Spec{}, err
		}
		s.ExtraNames = extras
	}
	if r.Services != nil {
		svcs := slices.Clone(r.Services)
		for _, svc := range svcs {
			if err := ValidateServiceName(svc); err != nil {
				return Spec{}, err
			}
			if _, err := NormalizeName(svc); err != nil {
				return Spec{}, fmt.Errorf("invalid service name %q: it must also be a valid DNS name to appear in a certificate", svc)
			}
		}
		slices.Sort(svcs)
		s.Services = slices.Compact(svcs)
	}
	// Services are DNS names in certificates; compare them lower-cased.
	s.Services = slices.Clone(s.Services)
	for i, svc := range s.Services {
		s.Services[i] = strings.ToLower(svc)
	}
	slices.Sort(s.Services)
	s.Services = slices.Compact(s.Services)
	s.ExtraNames = slices.Clone(s.ExtraNames)
	return s, nil
}
