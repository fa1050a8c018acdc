package portforward

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestAPIServerDialerNamesRBACRefusals: an API server that refuses the
// portforward subresource gets the one-sentence RBAC error on every
// transport, classified by the answer's status (each transport reports it in
// its own type), and any other refusal names the pod. The server is an
// httptest stand-in answering as kube-apiserver does; test/e2e drives the
// real one.
func TestAPIServerDialerNamesRBACRefusals(t *testing.T) {
	for _, tc := range []struct {
		code    int
		body    string
		want    string
		message string // the API server's, passed on
	}{
		{http.StatusForbidden,
			`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"orders-a\" is forbidden: User \"mallory\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"shop\"","reason":"Forbidden","details":{"name":"orders-a","kind":"pods"},"code":403}`,
			`forbidden: your Kubernetes user may not create pods/portforward in namespace "shop" (check with: kubectl auth can-i create pods/portforward -n shop): `,
			`pods "orders-a" is forbidden: User "mallory" cannot create resource "pods/portforward"`},
		{http.StatusInternalServerError,
			`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the kubelet is unreachable","reason":"InternalError","code":500}`,
			"open a port-forward stream to pod shop/orders-a: ", "the kubelet is unreachable"},
	} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/namespaces/shop/pods/orders-a/portforward") {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.code)
			w.Write([]byte(tc.body))
		}))
		cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range []Transport{TransportSPDY, TransportWebSocket, TransportAuto} {
			conn, err := NewAPIServerDialer(cfg, client, tr).DialPod("shop", "orders-a")
			if err == nil {
				conn.Close()
				t.Fatalf("%d over %s: dialled", tc.code, tr)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("%d over %s: %v\nwant it to contain %s", tc.code, tr, err, tc.want)
			}
		}
		srv.Close()
	}
}
