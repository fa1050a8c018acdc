package kubelet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// ipam hands out pod IPs from a loopback /16 (127.N.0.0/16). Every address
// in 127.0.0.0/8 reaches the host, so a pod's process can bind its own IP
// and port-forward can dial it, and two pods may both listen on :8080.
//
// The /16 is claimed with an flock'ed file, so two test clusters on one
// machine never hand out the same address; the kernel drops the lock when
// the kubelet dies, so a crashed kubelet leaks nothing.
type ipam struct {
	lock   *os.File
	prefix byte

	mu     sync.Mutex
	next   uint16
	inUse  map[uint16]bool
	closed bool
}

func newIPAM(lockDir string) (*ipam, error) {
	if err := os.MkdirAll(lockDir, 0o777); err != nil {
		return nil, err
	}
	// Several users may share the lock directory (it lives in /tmp).
	_ = os.Chmod(lockDir, 0o1777)
	for n := 1; n <= 254; n++ {
		// Read-only suffices for flock and lets another user lock a file
		// this user created.
		f, err := os.OpenFile(filepath.Join(lockDir, fmt.Sprintf("127.%d.lock", n)), os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return &ipam{lock: f, prefix: byte(n), next: 2, inUse: map[uint16]bool{}}, nil
	}
	return nil, errors.New("kubelet: every 127.N.0.0/16 pod network is held by another test kubelet")
}

func (a *ipam) cidr() string { return fmt.Sprintf("127.%d.0.0/16", a.prefix) }

// allocate returns the next free address. Addresses are handed out in
// sequence rather than reusing the lowest free one, so a new pod does not
// inherit the address (and lingering connections) of a pod that just died.
func (a *ipam) allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range 1 << 16 {
		n := a.next
		a.next++
		lo := byte(n)
		if lo == 0 || lo == 1 || lo == 255 || a.inUse[n] {
			continue
		}
		a.inUse[n] = true
		return netip.AddrFrom4([4]byte{127, a.prefix, byte(n >> 8), lo}).String(), nil
	}
	return "", errors.New("kubelet: pod network exhausted")
}

func (a *ipam) free(ip string) {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() {
		return
	}
	b := addr.As4()
	if b[0] != 127 || b[1] != a.prefix {
		return
	}
	a.mu.Lock()
	delete(a.inUse, uint16(b[2])<<8|uint16(b[3]))
	a.mu.Unlock()
}

func (a *ipam) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		a.lock.Close()
	}
}
