// Command shopsvc is the example shop's Go service: one static binary that runs
// as the orders API, the inventory service or the (plain HTTP) docs site, plus
// a `call` mode to make an mTLS request from inside a container.
//
// It is written the way a team's service would be, knowing nothing about
// devmtls: it reads its credentials from the files MTLS_CERT, MTLS_KEY and
// MTLS_CA name (in the cluster: /var/mtls/cert, /var/mtls/key, and the CA), and
// refuses any peer without a certificate from the same trust anchor.
//
//	shopsvc serve orders|inventory|pricing [-listen :8443]
//	shopsvc docs [-listen :8080]
//	shopsvc call [-no-client-cert | -foreign-cert] URL
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "docs":
		err = docs(os.Args[2:])
	case "call":
		err = call(os.Args[2:], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopsvc: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: shopsvc serve orders|inventory|pricing [-listen :8443] | shopsvc docs [-listen :8080] | shopsvc call [-no-client-cert|-foreign-cert] URL")
	os.Exit(2)
}

// credentials are the files the service was given.
type credentials struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func loadCredentials() (*credentials, error) {
	certFile, keyFile, caFile := os.Getenv("MTLS_CERT"), os.Getenv("MTLS_KEY"), os.Getenv("MTLS_CA")
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("MTLS_CERT, MTLS_KEY and MTLS_CA must name the credential files (this service never runs without mTLS)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &credentials{cert: cert, pool: pool}, nil
}

func (c *credentials) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.pool,
	}
}

func (c *credentials) client() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{c.cert},
			RootCAs:      c.pool,
		}},
	}
}

// peerName says who called: the verified client certificate's common name —
// the environment's name with one shared keypair, the calling service's name
// with one identity per service.
func peerName(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "unverified"
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName
}

type stock struct {
	SKU       string `json:"sku"`
	OnHand    int    `json:"on_hand"`
	Reserved  int    `json:"reserved"`
	Available int    `json:"available"`
}

type order struct {
	ID    string `json:"id"`
	SKU   string `json:"sku"`
	Qty   int    `json:"qty"`
	Stock *stock `json:"stock,omitempty"`
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// serve runs the orders API or the inventory service. Each calls the other
// over mTLS: orders asks inventory for stock, inventory asks orders what is
// reserved.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", ":8443", "address to listen on (mTLS)")
	if len(args) < 1 {
		usage()
	}
	role := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	creds, err := loadCredentials()
	if err != nil {
		return err
	}
	peer := creds.client()
	orders := []order{{ID: "o-1001", SKU: "mug", Qty: 2}, {ID: "o-1002", SKU: "tee", Qty: 1}, {ID: "o-1003", SKU: "mug", Qty: 1}}
	onHand := map[string]int{"mug": 12, "tee": 5, "cap": 0}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"service": role, "client": peerName(r)})
	})
	switch role {
	case "orders":
		inventory := envOr("INVENTORY_URL", "https://inventory:8443")
		mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
			out := make([]order, 0, len(orders))
			for _, o := range orders {
				var s stock
				if err := getJSON(r.Context(), peer, inventory+"/stock?sku="+url.QueryEscape(o.SKU), &s); err != nil {
					http.Error(w, "ask inventory: "+err.Error(), http.StatusBadGateway)
					return
				}
				o.Stock = &s
				out = append(out, o)
			}
			log.Printf("GET /orders from %s: asked inventory over mTLS for %d SKUs", peerName(r), len(out))
			writeJSON(w, map[string]any{"served_by": "orders", "client": peerName(r), "orders": out})
		})
		// With PRICING_URL (the hybrid example), orders quotes prices from the
		// pricing service of the test cluster, over mTLS like everything else.
		if pricing := os.Getenv("PRICING_URL"); pricing != "" {
			mux.HandleFunc("GET /quote", func(w http.ResponseWriter, r *http.Request) {
				sku := r.URL.Query().Get("sku")
				var price map[string]any
				if err := getJSON(r.Context(), peer, pricing+"/price?sku="+url.QueryEscape(sku), &price); err != nil {
					http.Error(w, "ask pricing: "+err.Error(), http.StatusBadGateway)
					return
				}
				log.Printf("GET /quote from %s: asked pricing over mTLS", peerName(r))
				writeJSON(w, map[string]any{"served_by": "orders", "client": peerName(r), "price": price})
			})
		}
		mux.HandleFunc("GET /reserved", func(w http.ResponseWriter, r *http.Request) {
			sku, n := r.URL.Query().Get("sku"), 0
			for _, o := range orders {
				if o.SKU == sku {
					n += o.Qty
				}
			}
			writeJSON(w, map[string]any{"sku": sku, "reserved": n, "client": peerName(r)})
		})
	case "pricing":
		// pricing runs in the test cluster only (examples/cluster): Compose
		// services reach it by its cluster name through a devmtls forward.
		prices := map[string]int{"mug": 1250, "tee": 1900, "cap": 1500}
		pod := envOr("POD_NAME", role)
		mux.HandleFunc("GET /price", func(w http.ResponseWriter, r *http.Request) {
			sku := r.URL.Query().Get("sku")
			cents, ok := prices[sku]
			if !ok {
				http.Error(w, "unknown sku "+sku, http.StatusNotFound)
				return
			}
			writeJSON(w, map[string]any{"sku": sku, "price_cents": cents, "served_by": pod, "client": peerName(r)})
		})
	case "inventory":
		ordersURL := envOr("ORDERS_URL", "https://orders:8443")
		mux.HandleFunc("GET /stock", func(w http.ResponseWriter, r *http.Request) {
			sku := r.URL.Query().Get("sku")
			var res struct {
				Reserved int `json:"reserved"`
			}
			if err := getJSON(r.Context(), peer, ordersURL+"/reserved?sku="+url.QueryEscape(sku), &res); err != nil {
				http.Error(w, "ask orders: "+err.Error(), http.StatusBadGateway)
				return
			}
			writeJSON(w, stock{SKU: sku, OnHand: onHand[sku], Reserved: res.Reserved, Available: onHand[sku] - res.Reserved})
		})
	default:
		return fmt.Errorf("unknown role %q: use orders, inventory or pricing", role)
	}
	srv := &http.Server{Addr: *listen, Handler: mux, TLSConfig: creds.serverConfig(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(os.Stderr, role+": ", log.LstdFlags)}
	log.Printf("%s listening on %s (mTLS: client certificate required)", role, *listen)
	return run(srv, func() error { return srv.ListenAndServeTLS("", "") })
}

// docs is a plain HTTP static page: the example's service that opts out of
// credentials (x-devmtls: false).
func docs(args []string) error {
	fs := flag.NewFlagSet("docs", flag.ExitOnError)
	listen := fs.String("listen", ":8080", "address to listen on (plain HTTP)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, set := os.LookupEnv("MTLS_CERT")
		fmt.Fprintf(w, "shop docs: this service has x-devmtls: false (credentials mounted: %v)\n", set)
	})}
	log.Printf("docs listening on %s (plain HTTP)", *listen)
	return run(srv, srv.ListenAndServe)
}

func run(srv *http.Server, listen func() error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- listen() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

// call makes one GET request and prints the body. -no-client-cert and
// -foreign-cert show that the services refuse callers without a certificate
// from this environment.
func call(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	noCert := fs.Bool("no-client-cert", false, "present no client certificate")
	foreign := fs.Bool("foreign-cert", false, "present a self-signed certificate that is not from this environment")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		usage()
	}
	creds, err := loadCredentials()
	if err != nil {
		return err
	}
	c := creds.client()
	tr := c.Transport.(*http.Transport)
	switch {
	case *noCert:
		tr.TLSClientConfig.Certificates = nil
	case *foreign:
		cert, err := selfSigned()
		if err != nil {
			return err
		}
		// Presented whatever CAs the server asks for: Go's default would
		// quietly send nothing for a certificate from another issuer.
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	resp, err := c.Get(fs.Arg(0))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", fs.Arg(0), resp.Status)
	}
	return nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "intruder"}, DNSNames: []string{"orders", "inventory"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
