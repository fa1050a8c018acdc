// Command inventory is the example's Go service: an HTTPS server that only
// talks to clients presenting a certificate it trusts. It reads its
// credentials from MTLS_CERT, MTLS_KEY and MTLS_CA, the same variables it
// gets in Compose, in the cluster and from `devmtls exec`.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	if err := run(); err != nil {
		log.Fatalf("inventory: %v", err)
	}
}

func run() error {
	certFile, keyFile, caFile := os.Getenv("MTLS_CERT"), os.Getenv("MTLS_KEY"), os.Getenv("MTLS_CA")
	if certFile == "" || keyFile == "" || caFile == "" {
		return fmt.Errorf("MTLS_CERT, MTLS_KEY and MTLS_CA must be set; run it with `devmtls exec -- inventory`")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s holds no certificate", caFile)
	}
	addr := "127.0.0.1:" + envOr("PORT", "8443")
	srv := &http.Server{
		Addr: addr,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{pair},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"service": "inventory",
				"client":  r.TLS.PeerCertificates[0].Subject.CommonName,
				"items":   map[string]int{"espresso": 12, "filter": 40},
			})
		}),
	}
	log.Printf("inventory: listening on https://%s (client certificate required)", addr)
	return srv.ListenAndServeTLS("", "")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
