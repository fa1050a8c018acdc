package main

import (
	"path/filepath"
	"time"

	"github.com/devmtls/devmtls/portforward"
	"github.com/spf13/pflag"
)

// forwardTuning are the flags of `devmtls forward` that shape how it reaches
// pods: spreading, where the cluster keypair comes from, keepalive.
type forwardTuning struct {
	pin       bool
	credsDir  string
	keepAlive time.Duration
}

func (t *forwardTuning) add(fl *pflag.FlagSet) {
	fl.BoolVar(&t.pin, "pin", false, "send every connection to one Ready pod, as kubectl does, instead of round-robin over the Ready pods of a svc/deploy/sts/rs target")
	fl.StringVar(&t.credsDir, "cluster-creds", "", "read the cluster keypair from the files of `DIR` (cert, key, ca or tls.crt, tls.key, ca.crt) instead of a Secret, for users who may not get Secrets")
	fl.DurationVar(&t.keepAlive, "keepalive", portforward.DefaultKeepAlive, "how often to ping the connections to the API server so proxies keep idle forwards open; 0 or less turns pings off")
}

// apply sets the options the flags map to.
func (t *forwardTuning) apply(fl *pflag.FlagSet, o *portforward.Options) error {
	if t.credsDir != "" {
		if fl.Changed("secret") {
			return usageErrorf("--cluster-creds and --secret both say where the cluster keypair is: give one")
		}
		abs, err := filepath.Abs(t.credsDir)
		if err != nil {
			return usageErrorf("--cluster-creds: %v", err)
		}
		o.ClusterCredsDir = abs
	}
	o.Pin = t.pin
	o.KeepAlive = t.keepAlive
	if t.keepAlive <= 0 {
		o.KeepAlive = -1 // the flag's 0 means off; Options' 0 means the default
	}
	return nil
}
