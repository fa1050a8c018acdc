package forwards

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// The range StablePort chooses from: unprivileged, and below the ephemeral
// port ranges (Linux 32768-60999, macOS and Windows 49152-65535), so an
// outgoing connection's local port never takes one between two runs.
const (
	FirstStablePort = 20000
	LastStablePort  = 32767
)

// StablePort picks a listen port that stays the same from run to run for the
// same seed: the first port, going up from a start derived from seed and
// wrapping around the range, that is not used and that free says is free.
func StablePort(seed string, used map[int]bool, free func(int) bool) (int, error) {
	sum := sha256.Sum256([]byte(seed))
	span := LastStablePort - FirstStablePort + 1
	start := int(binary.BigEndian.Uint32(sum[:4]) % uint32(span))
	const tries = 200
	for i := range tries {
		p := FirstStablePort + (start+i)%span
		if !used[p] && free(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("found no free port among %d tried in %d-%d", tries, FirstStablePort, LastStablePort)
}
