package compose

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/devmtls/devmtls/forwards"
	"go.yaml.in/yaml/v4"
)

// ForwardsFile is what `devmtls forward -f FILE` serves: the forwards of a
// forwards file, or the x-devmtls.forwards of a compose file.
//
// A forwards file has one top-level key, forwards, holding the list that
// x-devmtls.forwards holds in a compose file (the same schema and parser,
// ParseForwards):
//
//	forwards:
//	  - target: svc/orders
//	    namespace: shop
//	    ports: ["8443:443"]
//	  - target: deploy/billing
//	    namespace: billing
//	    context: staging
//	    creds: ./billing-creds
//	    ports: ["9443:https"]
//
// A file with a top-level services: or x-devmtls: is a compose file, loaded
// as compose loads it (interpolation, .env, extends, include).
type ForwardsFile struct {
	// Path is the file, absolute.
	Path string
	// Forwards are the declared forwards, with creds made absolute.
	Forwards []forwards.Forward
	// Project is the compose project when the file is a compose file.
	Project *Project
}

// ForwardsFileKey is the top-level key of a forwards file.
const ForwardsFileKey = "forwards"

// ErrNoForwards is wrapped when a file declares no forwards.
var ErrNoForwards = errors.New("declares no forwards")

// LoadForwardsFile reads path (relative to the working directory) as a
// forwards file or a compose file, whichever it is.
func LoadForwardsFile(ctx context.Context, path string) (*ForwardsFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("-f %s: no such file; give a forwards file (forwards: [...]) or a compose file with %s.forwards", path, Extension)
	}
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", path, err)
	}
	list, isCompose, err := parseForwardsFile(path, data)
	if err != nil {
		return nil, err
	}
	if isCompose {
		return loadComposeForwards(ctx, path, abs)
	}
	out := &ForwardsFile{Path: abs, Forwards: list}
	resolveCreds(out.Forwards, filepath.Dir(abs))
	return out, nil
}

// parseForwardsFile reads a forwards file's data; isCompose says it is a
// compose file instead (a top-level services: or x-devmtls:), which the
// compose loader reads.
func parseForwardsFile(path string, data []byte) (list []forwards.Forward, isCompose bool, err error) {
	var top any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, false, fmt.Errorf("%s: not YAML: %w", path, err)
	}
	m, _ := top.(map[string]any)
	_, hasServices := m["services"]
	_, hasExt := m[Extension]
	if hasServices || hasExt {
		return nil, true, nil
	}
	err = decodeMapping("", top, map[string]fieldDecoder{
		ForwardsFileKey: func(p string, v any) (err error) {
			list, err = ParseForwards(ForwardsFileKey, v)
			return err
		},
	}, func(key string) string {
		return fmt.Sprintf("unknown key: a forwards file holds only %s: (the list x-devmtls.forwards holds in a compose file); a compose file has services:", ForwardsFileKey)
	})
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Path = path + ": " + trimDot(fe.Path)
			return nil, false, fe
		}
		return nil, false, err
	}
	if len(list) == 0 {
		return nil, false, fmt.Errorf("%s %w: list them under %s:, e.g. %s: [{target: svc/orders, ports: [\"8443:443\"]}]", path, ErrNoForwards, ForwardsFileKey, ForwardsFileKey)
	}
	return list, false, nil
}

func loadComposeForwards(ctx context.Context, path, abs string) (*ForwardsFile, error) {
	p, err := Load(ctx, LoadOptions{Files: []string{abs}})
	if err != nil {
		return nil, err
	}
	if len(p.Config.Forwards) == 0 {
		return nil, fmt.Errorf("%s is a compose file that %w: declare them under %s.forwards, or give a forwards file", path, ErrNoForwards, Extension)
	}
	return &ForwardsFile{Path: abs, Forwards: p.Config.Forwards, Project: p}, nil
}

func trimDot(p string) string {
	if len(p) > 0 && p[0] == '.' {
		return p[1:]
	}
	return p
}
