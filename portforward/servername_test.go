package portforward

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestForwardChecksTheServerNameAnnotation: the Service's
// devmtls.dev/server-name makes the forward check that name on the pod's
// certificate (the rig's cluster keypair names orders, not billing), and
// --server-name wins over the annotation.
func TestForwardChecksTheServerNameAnnotation(t *testing.T) {
	for _, tc := range []struct {
		annotation, flag string
		ok               bool
	}{
		{annotation: "orders", ok: true},
		{annotation: "billing"},
		{annotation: "billing", flag: "orders", ok: true},
		{annotation: "orders", flag: "billing"},
	} {
		t.Run("annotation "+tc.annotation+" flag "+tc.flag, func(t *testing.T) {
			r := newRig(t)
			svc, err := r.client.CoreV1().Services(rigNamespace).Get(context.Background(), "orders", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			svc.Annotations = map[string]string{ServerNameAnnotation: tc.annotation}
			if _, err := r.client.CoreV1().Services(rigNamespace).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			r.addPod("orders-a", true)
			if err := r.start(func(o *Options) { o.ServerName = tc.flag }); err != nil {
				t.Fatal(err)
			}
			err = r.tryEcho()
			if tc.ok && err != nil {
				t.Fatalf("the pod's certificate names orders: %v\n%s", err, r.logs)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("a pod whose certificate does not name billing was reached")
				}
				if !strings.Contains(r.logs.String(), "billing") {
					t.Errorf("the log does not say which name the pod's certificate lacks:\n%s", r.logs)
				}
			}
		})
	}
}
