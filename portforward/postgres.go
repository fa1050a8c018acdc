package portforward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PostgreSQL's special protocol codes, sent in place of a protocol version.
const (
	pgSSLRequestCode    = 80877103
	pgGSSENCRequestCode = 80877104
	pgCancelRequestCode = 80877102
	pgProtocol3         = 196608
	// maxStartupPacket is PostgreSQL's own limit (MAX_STARTUP_PACKET_LENGTH).
	maxStartupPacket = 10000
)

type pgOpening int

const (
	pgSSL pgOpening = iota
	pgStartup
	pgCancel
)

// readPostgresOpening reads the client's first packet. GSSENCRequest is
// answered 'N' (devmtls speaks TLS, not GSSAPI) and the next packet is read.
// It reads exactly one packet's bytes, never more, so nothing the client sent
// after an SSLRequest can be buffered here and mistaken for protocol data.
func readPostgresOpening(r io.ReadWriter) (pgOpening, []byte, error) {
	for gss := 0; gss < 2; gss++ {
		packet, err := readStartupPacket(r)
		if err != nil {
			return 0, nil, err
		}
		code := binary.BigEndian.Uint32(packet[4:8])
		switch {
		case code == pgSSLRequestCode && len(packet) == 8:
			return pgSSL, packet, nil
		case code == pgGSSENCRequestCode && len(packet) == 8:
			if _, err := r.Write([]byte{'N'}); err != nil {
				return 0, nil, err
			}
			continue
		case code == pgCancelRequestCode && len(packet) == 16:
			return pgCancel, packet, nil
		case code>>16 == 3:
			return pgStartup, packet, nil
		}
		return 0, nil, fmt.Errorf("unsupported PostgreSQL frontend protocol %d.%d", code>>16, code&0xffff)
	}
	return 0, nil, errors.New("PostgreSQL client sent GSSENCRequest twice")
}

// readStartupPacket reads one length-prefixed startup-phase packet.
func readStartupPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read PostgreSQL startup packet: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 8 || n > maxStartupPacket {
		return nil, fmt.Errorf("invalid PostgreSQL startup packet length %d", n)
	}
	packet := make([]byte, n)
	copy(packet, hdr[:])
	if _, err := io.ReadFull(r, packet[4:]); err != nil {
		return nil, fmt.Errorf("read PostgreSQL startup packet: %w", err)
	}
	return packet, nil
}

// requestPostgresTLS sends SSLRequest to the server and expects 'S'.
func requestPostgresTLS(rw io.ReadWriter) error {
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:4], 8)
	binary.BigEndian.PutUint32(req[4:8], pgSSLRequestCode)
	if _, err := rw.Write(req[:]); err != nil {
		return fmt.Errorf("send SSLRequest: %w", err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(rw, answer[:]); err != nil {
		return fmt.Errorf("read the answer to SSLRequest: %w", err)
	}
	switch answer[0] {
	case 'S':
		return nil
	case 'N':
		return errors.New("the PostgreSQL server does not accept TLS (ssl = off); devmtls will not forward in plain text")
	}
	return fmt.Errorf("unexpected answer %q to SSLRequest: is this a PostgreSQL server?", answer[0])
}

// writePostgresError sends an ErrorResponse, which libpq shows to the user.
func writePostgresError(w io.Writer, code, msg string) {
	var body []byte
	body = append(body, 'S')
	body = append(body, "FATAL"...)
	body = append(body, 0, 'V')
	body = append(body, "FATAL"...)
	body = append(body, 0, 'C')
	body = append(body, code...)
	body = append(body, 0, 'M')
	body = append(body, msg...)
	body = append(body, 0, 0)
	out := make([]byte, 5, 5+len(body))
	out[0] = 'E'
	binary.BigEndian.PutUint32(out[1:5], uint32(4+len(body)))
	w.Write(append(out, body...))
}

// backendFraming passes what the server sends on to the client and follows
// its message framing (a type byte, then a length that counts itself), so
// that an ErrorResponse is only ever added between two messages. It costs a
// few comparisons per message, nothing per byte.
type backendFraming struct {
	w       io.Writer
	header  [5]byte
	inHead  int   // bytes of the current message's header seen
	left    int64 // bytes of the current message's body still to come
	invalid bool  // a length below 4: no longer PostgreSQL, never at a boundary
}

func (b *backendFraming) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	b.follow(p[:n])
	return n, err
}

func (b *backendFraming) follow(p []byte) {
	for len(p) > 0 && !b.invalid {
		if b.left > 0 {
			skip := min(int64(len(p)), b.left)
			b.left -= skip
			p = p[skip:]
			continue
		}
		k := copy(b.header[b.inHead:], p)
		b.inHead += k
		p = p[k:]
		if b.inHead == len(b.header) {
			b.inHead = 0
			b.left = int64(binary.BigEndian.Uint32(b.header[1:])) - 4
			b.invalid = b.left < 0
		}
	}
}

// atBoundary reports whether everything passed on so far ends with a whole
// message.
func (b *backendFraming) atBoundary() bool {
	return !b.invalid && b.inHead == 0 && b.left == 0
}
