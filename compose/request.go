package compose

import (
	"slices"

	"github.com/devmtls/devmtls/certs"
)

// CertsRequest is what the project asks of the environment's credentials:
// x-devmtls's mode, key type, validity, common name and extra names, and every
// service that gets credentials (its name goes into the shared certificate's
// SANs; in ca mode it gets its own leaf). Services is never nil, so services
// that left the project lose their names and leaves.
func (p *Project) CertsRequest() certs.Request {
	r := certs.Request{
		Mode:       p.Config.Mode,
		KeyType:    p.Config.KeyType,
		Validity:   p.Config.Validity,
		CommonName: p.Config.CommonName,
		Services:   p.ServiceNames(),
	}
	if p.Config.Names != nil || len(p.Config.Forwards) > 0 {
		// Containers verify a forward's certificate against the name they
		// dialled, so forward names are certificate names too.
		r.ExtraNames = append(slices.Clone(p.Config.Names), p.Config.ForwardNames()...)
	}
	return r
}

// Request is the one place a devmtls command decides what to ask of the
// credentials store: the project's x-devmtls (p may be nil outside a compose
// project) with every field the user set by flag taking precedence.
func Request(p *Project, flags certs.Request) certs.Request {
	if p == nil {
		return flags
	}
	r := p.CertsRequest()
	if flags.Mode != "" {
		r.Mode = flags.Mode
	}
	if flags.KeyType != "" {
		r.KeyType = flags.KeyType
	}
	if flags.Validity != 0 {
		r.Validity = flags.Validity
	}
	if flags.CommonName != "" {
		r.CommonName = flags.CommonName
	}
	if flags.ExtraNames != nil {
		r.ExtraNames = append(slices.Clone(flags.ExtraNames), p.Config.ForwardNames()...)
	}
	if flags.Services != nil {
		r.Services = slices.Clone(flags.Services)
	}
	return r
}
