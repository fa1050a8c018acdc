// Command relayhelper is built dynamically linked (the net package's cgo
// resolver), as devmtls is by default, for TestEnsureImageOnce: its image
// needs the loader and libc that ldd names.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	_, err := net.LookupHost("localhost")
	fmt.Println("relay image ok", os.Args[1:], os.Getuid(), err)
}
