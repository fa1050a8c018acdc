// Command pairreader reads a credentials directory in a loop while devmtls
// rotates it, the ways a service reloading its files may, and reports how
// often it saw a certificate and key that do not belong together. The
// end-to-end tests run it on the host and, built static, in a FROM scratch
// container through the compose mount. It uses the standard library only.
//
// Readers:
//
//	naive    open cert, then open key, by their stable paths
//	data     open ..data once as a directory, then read cert and key in it
//	keycert  read key+cert, one file
//
// It stops after -for, or at SIGTERM, and prints its counts as JSON.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// counts is what one reader saw.
type counts struct {
	Reads      int `json:"reads"`
	Mismatches int `json:"mismatches"` // a complete cert and a complete key that do not match
	Torn       int `json:"torn"`       // a file that is not whole PEM
	Retries    int `json:"retries"`    // a file missing for a moment (ENOENT), read again
	// Generations is how many distinct certificates the reader saw.
	Generations int `json:"generations"`
	seen        map[[32]byte]bool
}

func (c *counts) check(certPEM, keyPEM []byte) {
	c.Reads++
	if !wholePEM(certPEM) || !wholePEM(keyPEM) {
		c.Torn++
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		c.Mismatches++
		return
	}
	block, _ := pem.Decode(certPEM)
	sum := sha256.Sum256(block.Bytes)
	if !c.seen[sum] {
		c.seen[sum] = true
		c.Generations++
	}
}

// wholePEM reports whether data is one or more complete PEM blocks.
func wholePEM(data []byte) bool {
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return n > 0 && len(bytes.TrimSpace(data)) == 0
		}
		n++
	}
}

func main() {
	dir := flag.String("dir", "/var/mtls", "directory holding cert, key, key+cert and ..data")
	readers := flag.String("readers", "naive,data,keycert", "readers to run, comma-separated")
	duration := flag.Duration("for", 0, "stop after this long (0: at SIGTERM)")
	ready := flag.String("ready", "", "file to create once reading has started (host runs)")
	flag.Parse()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if *duration > 0 {
		go func() { time.Sleep(*duration); stop <- syscall.SIGTERM }()
	}
	names := strings.Split(*readers, ",")
	results := map[string]*counts{}
	for _, n := range names {
		results[n] = &counts{seen: map[[32]byte]bool{}}
	}
	fmt.Println("reading")
	if *ready != "" {
		os.WriteFile(*ready, nil, 0o600)
	}
	for {
		select {
		case <-stop:
			out, _ := json.Marshal(results)
			fmt.Println(string(out))
			return
		default:
		}
		for _, n := range names {
			read(n, *dir, results[n])
		}
	}
}

func read(reader, dir string, c *counts) {
	switch reader {
	case "naive":
		cert, err1 := os.ReadFile(filepath.Join(dir, "cert"))
		key, err2 := os.ReadFile(filepath.Join(dir, "key"))
		if retry(c, err1, err2) {
			return
		}
		c.check(cert, key)
	case "data":
		root, err := os.OpenRoot(filepath.Join(dir, "..data"))
		if retry(c, err) {
			return
		}
		cert, err1 := root.ReadFile("cert")
		key, err2 := root.ReadFile("key")
		root.Close()
		if retry(c, err1, err2) {
			return
		}
		c.check(cert, key)
	case "keycert":
		kc, err := os.ReadFile(filepath.Join(dir, "key+cert"))
		if retry(c, err) {
			return
		}
		c.check(kc, kc)
	default:
		fmt.Fprintf(os.Stderr, "pairreader: unknown reader %q\n", reader)
		os.Exit(2)
	}
}

// retry counts a file that vanished under the reader (an old generation
// removed after the switch); any other error is fatal.
func retry(c *counts, errs ...error) bool {
	for _, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			c.Retries++
			return true
		}
		fmt.Fprintln(os.Stderr, "pairreader:", err)
		os.Exit(1)
	}
	return false
}
