package portforward

import (
	"os"
	"strconv"
	"strings"
)

// firstUnprivilegedPort is net.ipv4.ip_unprivileged_port_start: ports below it
// need CAP_NET_BIND_SERVICE.
func firstUnprivilegedPort() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}
