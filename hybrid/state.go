package hybrid

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/devmtls/devmtls/internal/digits"
	"github.com/devmtls/devmtls/internal/envdir"
)

// isProcessStart bounds what a recorded process start may look like: digits
// (clock ticks, or seconds.microseconds, or Windows file time), no more —
// ^[0-9]{1,24}(\.[0-9]{1,9})?$ checked by hand, because a package-level
// regexp is compiled at every devmtls start, even `devmtls version`.
func isProcessStart(s string) bool {
	whole, frac, dotted := strings.Cut(s, ".")
	return len(whole) <= 24 && digits.Only(whole) && (!dotted || len(frac) <= 9 && digits.Only(frac))
}

// parseState reads a state.json the process wrote. The file lives in a
// directory that may come from a cloned repository, so everything devmtls
// acts on (the PID above all) is checked; the proof that PID is the forwards
// process comes from the running system, never from this file (see
// proveForwards).
func parseState(p string, data []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); stop the forwards process and run devmtls up again", p, err)
	}
	switch {
	case st.PID <= 1 || st.PID > 1<<22:
		return nil, fmt.Errorf("%s is damaged (pid %d is not a process devmtls starts); run devmtls up again", p, st.PID)
	case st.Start != "" && !isProcessStart(st.Start):
		return nil, fmt.Errorf("%s is damaged (start %q is not a process start time); run devmtls up again", p, st.Start)
	case st.EnvDir != "" && !filepath.IsAbs(st.EnvDir):
		return nil, fmt.Errorf("%s is damaged (env_dir %q is not absolute); run devmtls up again", p, st.EnvDir)
	}
	if _, err := hex.DecodeString(st.SpecHash); err != nil {
		return nil, fmt.Errorf("%s is damaged (spec_hash is not hexadecimal); run devmtls up again", p)
	}
	return &st, nil
}

// parseSpec reads a spec.json devmtls up wrote. Each forward is validated as
// it is decoded (forwards.Forward's JSON form); every host port must be one
// an unprivileged process may listen on.
func parseSpec(p string, data []byte) (Spec, error) {
	var spec Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return Spec{}, fmt.Errorf("%s is damaged (%v); run devmtls up again", p, err)
	}
	if spec.Gateway != "" && net.ParseIP(spec.Gateway) == nil {
		return Spec{}, fmt.Errorf("%s is damaged (gateway %q is not an IP address); run devmtls up again", p, spec.Gateway)
	}
	for _, f := range spec.Forwards {
		for _, declared := range f.Ports() {
			if port := spec.HostPorts.Port(f.As, declared); port < 1024 || port > 65535 {
				return Spec{}, fmt.Errorf("%s is damaged (forward %s: host port %d for %d); run devmtls up again", p, f.As, port, declared)
			}
		}
	}
	return spec, nil
}

// readState returns the state file's content, or an error wrapping
// fs.ErrNotExist.
func readState(d *envdir.Dir) (*State, error) {
	data, err := d.ReadFile(rel(stateFile))
	if err != nil {
		return nil, err
	}
	return parseState(d.Path(rel(stateFile)), data)
}

// ErrNotProven is wrapped by every refusal to signal a process devmtls could
// not prove it started.
var ErrNotProven = errors.New("not proven to be the forwards process")

// ProofError says why devmtls left a process alone: it could not prove the
// process named in the state file is the forwards process it started for
// this environment.
type ProofError struct {
	PID     int
	State   string // the state file
	EnvDir  string
	Finding string // what devmtls found instead
}

func (e *ProofError) Error() string {
	return fmt.Sprintf("left process %d alone: %s names it as the forwards process of %s, but %s, so nothing was signalled; stop the forwards process yourself if one still runs, then run devmtls up again",
		e.PID, e.State, e.EnvDir, e.Finding)
}

// Unwrap makes errors.Is(err, ErrNotProven) true.
func (e *ProofError) Unwrap() error { return ErrNotProven }
