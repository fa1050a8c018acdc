// Command podserver is the mTLS workload the end-to-end tests run as pods in
// the test cluster (the test kubelet runs pods as host processes). Like the
// services devmtls is made for, it reads the cluster keypair — here from
// environment variables filled from the Secret — and requires client
// certificates pinned to it (or issued by MTLS_CA when set).
//
//	podserver --listen ADDR --mode http|echo|source
package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("podserver", flag.ContinueOnError)
	listen := fs.String("listen", "", "address to listen on")
	mode := fs.String("mode", "http", "http (answers who called), echo (TLS echo) or source (sends the number of bytes asked for)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := tlsConfig()
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", *listen, cfg)
	if err != nil {
		return err
	}
	log.Printf("podserver %s listening on %s", *mode, ln.Addr())
	switch *mode {
	case "http":
		name := os.Getenv("POD_NAME")
		return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s to %s\n", name, r.TLS.PeerCertificates[0].Subject.CommonName)
		}))
	case "echo":
		return serveEach(ln, echo)
	case "source":
		return serveEach(ln, source)
	}
	return fmt.Errorf("unknown mode %q", *mode)
}

func tlsConfig() (*tls.Config, error) {
	certPEM, keyPEM := []byte(os.Getenv("MTLS_CERT")), []byte(os.Getenv("MTLS_KEY"))
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("MTLS_CERT and MTLS_KEY must hold the PEM keypair")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	anchor := certPEM
	if ca := os.Getenv("MTLS_CA"); ca != "" {
		anchor = []byte(ca)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(anchor) {
		return nil, errors.New("no certificate in the trust anchor")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// serveEach runs handle on each connection ln accepts.
func serveEach(ln net.Listener, handle func(*tls.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			handle(c.(*tls.Conn))
		}()
	}
}

// echo sends back what it reads, then finishes cleanly.
func echo(c *tls.Conn) {
	buf := make([]byte, 128<<10)
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
	c.CloseWrite()
}

// source reads how many bytes the client wants (8 bytes, big-endian), sends
// that many and finishes cleanly (close_notify), so that a client can tell a
// complete download from a cut one.
func source(c *tls.Conn) {
	var n uint64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	rand.Read(buf)
	for n > 0 {
		k := min(n, uint64(len(buf)))
		if _, err := c.Write(buf[:k]); err != nil {
			return
		}
		n -= k
	}
	c.CloseWrite()
}
