package target

import "fmt"

// Protocol is what runs over a forwarded connection.
type Protocol string

// Protocols.
const (
	// ProtocolTCP is TLS directly on the connection.
	ProtocolTCP Protocol = "tcp"
	// ProtocolPostgres negotiates TLS with PostgreSQL's SSLRequest on both sides.
	ProtocolPostgres Protocol = "postgres"
)

// ParseProtocol reads a protocol name: tcp or postgres.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(s); p {
	case ProtocolTCP, ProtocolPostgres:
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q: use tcp or postgres", s)
}
