package compose

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/devmtls/devmtls/portforward/target"
)

// Forward is one x-devmtls.forwards entry: a service of the test cluster that
// Compose services (and host processes) reach by a name — usually the name it
// has in production — through a devmtls forward, over mTLS on both legs.
//
//	x-devmtls:
//	  forwards:
//	    - target: svc/orders      # TYPE/NAME, as for devmtls forward
//	      namespace: shop         # default: the kubeconfig context's
//	      context: test-cluster   # default: the current context
//	      ports: ["443"]          # LISTEN[:REMOTE]; containers use LISTEN
//	      secret: mtls            # default: the Service's annotation, else mtls
//	      protocol: tcp           # or postgres
//	      server_name: orders.shop.svc
//	      as: orders              # default: the target's NAME
type Forward struct {
	Target     target.Target `json:"-"`
	TargetSpec string        `json:"target"`
	Namespace  string        `json:"namespace,omitempty"`
	Context    string        `json:"context,omitempty"`
	Ports      []ForwardPort `json:"ports"`
	Secret     string        `json:"secret,omitempty"`
	Protocol   string        `json:"protocol"`
	ServerName string        `json:"server_name,omitempty"`
	As         string        `json:"as"`
}

// ForwardPort is the port containers connect to (Listen) and the port of the
// target it reaches (Remote: a number or a port name).
type ForwardPort struct {
	Listen int    `json:"listen"`
	Remote string `json:"remote"`
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// parseForwards decodes x-devmtls.forwards.
func parseForwards(p string, v any) ([]Forward, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fieldErr(p, "must be a list of forwards such as {target: svc/orders, ports: [\"443\"]}, got %s", describe(v))
	}
	var out []Forward
	seen := map[string]string{}
	for i, item := range list {
		ip := fmt.Sprintf("%s[%d]", p, i)
		f := Forward{Protocol: "tcp"}
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
				f.Target, f.TargetSpec = t, s
				return nil
			},
			"namespace":   stringInto(&f.Namespace),
			"context":     stringInto(&f.Context),
			"secret":      stringInto(&f.Secret),
			"server_name": stringInto(&f.ServerName),
			"as":          stringInto(&f.As),
			"protocol": func(p string, v any) error {
				s, err := asString(p, v)
				if err == nil && s != "tcp" && s != "postgres" {
					err = fieldErr(p, "must be tcp or postgres, got %q", s)
				}
				f.Protocol = s
				return err
			},
			"ports": func(p string, v any) error {
				ports, err := asPorts(p, v)
				f.Ports = ports
				return err
			},
		}, noHint)
		if err != nil {
			return nil, err
		}
		if f.TargetSpec == "" {
			return nil, fieldErr(ip+".target", "is required, e.g. target: svc/orders")
		}
		if len(f.Ports) == 0 {
			return nil, fieldErr(ip+".ports", "is required: the ports containers use, e.g. ports: [\"443\"]")
		}
		if f.As == "" {
			f.As = f.Target.Name
		}
		if !dnsLabel.MatchString(f.As) || f.As == "localhost" {
			return nil, fieldErr(ip+".as", "must be a host name containers can use (lower-case letters, digits and '-'), got %q", f.As)
		}
		if prev, dup := seen[f.As]; dup {
			return nil, fieldErr(ip+".as", "%s is already the name of %s; give one of them another name with as:", f.As, prev)
		}
		seen[f.As] = ip
		f.Target.Ports = nil
		for _, fp := range f.Ports {
			f.Target.Ports = append(f.Target.Ports, target.PortSpec{Local: fp.Listen, Remote: fp.Remote})
		}
		out = append(out, f)
	}
	return out, nil
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
func asPorts(p string, v any) ([]ForwardPort, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fieldErr(p, "must be a list of ports such as [\"443\"] or [\"5432:postgres\"], got %s", describe(v))
	}
	var out []ForwardPort
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
		out = append(out, ForwardPort{Listen: spec.Local, Remote: spec.Remote})
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
