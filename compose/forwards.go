package compose

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/devmtls/devmtls/forwards"
	"github.com/devmtls/devmtls/portforward/target"
)

// ParseForwards decodes a list of forwards in the x-devmtls.forwards schema;
// p is the list's place in its file, for error messages
// ("x-devmtls.forwards"). Every field is checked here, once:
//
//	x-devmtls:
//	  forwards:
//	    - target: svc/orders      # TYPE/NAME, as for devmtls forward
//	      namespace: shop         # default: the kubeconfig context's
//	      context: test-cluster   # default: the current context
//	      ports: ["443"]          # LISTEN[:REMOTE]; containers use LISTEN
//	      secret: mtls            # default: the Service's annotation, else mtls
//	      creds: ./cluster-creds  # instead of secret: the keypair as files,
//	                              # relative to the declaring file's directory
//	      protocol: tcp           # or postgres
//	      server_name: orders.shop.svc
//	      as: orders              # default: the target's NAME
func ParseForwards(p string, v any) ([]forwards.Forward, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fieldErr(p, "must be a list of forwards such as {target: svc/orders, ports: [\"443\"]}, got %s", describe(v))
	}
	var out []forwards.Forward
	seen := map[string]string{}
	for i, item := range list {
		ip := fmt.Sprintf("%s[%d]", p, i)
		f := forwards.Forward{Protocol: target.ProtocolTCP}
		var ports []target.PortSpec
		err := decodeMapping(ip, item, map[string]fieldDecoder{
			"target": func(p string, v any) error {
				s, err := asString(p, v)
				if err != nil {
					return err
				}
				t, err := target.ParseTarget(s)
				if err != nil {
					return fieldErr(p, "%v", err)
				}
				f.Target = t
				return nil
			},
			"namespace":   stringInto(&f.Namespace),
			"context":     stringInto(&f.Context),
			"secret":      stringInto(&f.Secret),
			"creds":       stringInto(&f.Creds),
			"server_name": stringInto(&f.ServerName),
			"as":          stringInto(&f.As),
			"protocol": func(p string, v any) error {
				s, err := asString(p, v)
				if err != nil {
					return err
				}
				if f.Protocol, err = target.ParseProtocol(s); err != nil {
					return fieldErr(p, "must be tcp or postgres, got %q", s)
				}
				return nil
			},
			"ports": func(p string, v any) (err error) {
				ports, err = asPorts(p, v)
				return err
			},
		}, noHint)
		if err != nil {
			return nil, err
		}
		if f.Target.Name == "" {
			return nil, fieldErr(ip+".target", "is required, e.g. target: svc/orders")
		}
		if len(ports) == 0 {
			return nil, fieldErr(ip+".ports", "is required: the ports containers use, e.g. ports: [\"443\"]")
		}
		f.Target.Ports = ports
		if f.Creds != "" && f.Secret != "" {
			return nil, fieldErr(ip+".creds", "and secret both name the cluster keypair: keep creds (files you hold) or secret (a Secret you can read), not both")
		}
		if f.As == "" {
			f.As = f.Target.Name
		}
		if err := forwards.ValidateName(f.As); err != nil {
			return nil, fieldErr(ip+".as", "%v", err)
		}
		if prev, dup := seen[f.As]; dup {
			return nil, fieldErr(ip+".as", "%s is already the name of %s; give one of them another name with as:", f.As, prev)
		}
		seen[f.As] = ip
		out = append(out, f)
	}
	return out, nil
}

// resolveCreds makes each forward's creds directory absolute, relative to
// dir (the directory of the file that declares it), so the forward means the
// same files wherever the process that serves it runs.
func resolveCreds(fs []forwards.Forward, dir string) {
	for i := range fs {
		if c := fs[i].Creds; c != "" && !filepath.IsAbs(c) {
			fs[i].Creds = filepath.Join(dir, c)
		}
	}
}

func stringInto(dst *string) fieldDecoder {
	return func(p string, v any) error {
		s, err := asString(p, v)
		*dst = s
		return err
	}
}

// asPorts reads LISTEN or LISTEN:REMOTE entries; YAML numbers are accepted as
// the shorthand they look like.
func asPorts(p string, v any) ([]target.PortSpec, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fieldErr(p, "must be a list of ports such as [\"443\"] or [\"5432:postgres\"], got %s", describe(v))
	}
	var out []target.PortSpec
	for i, e := range l {
		ep := fmt.Sprintf("%s[%d]", p, i)
		var s string
		switch x := e.(type) {
		case string:
			s = x
		case int:
			s = strconv.Itoa(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		case uint64:
			s = strconv.FormatUint(x, 10)
		default:
			return nil, fieldErr(ep, "must be a port such as \"443\" or \"8443:https\", got %s", describe(e))
		}
		spec, err := target.ParsePortSpec(s)
		if err != nil {
			return nil, fieldErr(ep, "%v", err)
		}
		if spec.Local == 0 {
			return nil, fieldErr(ep, "needs the port containers connect to, e.g. \"443\" or \"8443:%s\"", strings.TrimPrefix(s, ":"))
		}
		out = append(out, spec)
	}
	return out, nil
}

// ForwardNames are the names containers reach forwards by; they go into the
// certificate, since a container verifies the forward's certificate against
// the name it dialled.
func (c Config) ForwardNames() []string {
	var out []string
	for _, f := range c.Forwards {
		out = append(out, f.As)
	}
	return out
}

// checkForwardNames refuses a forward name that is also a compose service: the
// container's /etc/hosts entry would silently shadow the service.
func (p *Project) checkForwardNames(all []string) error {
	for i, f := range p.Config.Forwards {
		for _, svc := range all {
			if svc == f.As {
				return fieldErr(fmt.Sprintf("%s.forwards[%d].as", Extension, i),
					"%s is also a compose service, and a container could not tell them apart; reach the cluster's one by another name with as:", f.As)
			}
		}
	}
	return nil
}
