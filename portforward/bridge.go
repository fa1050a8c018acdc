package portforward

import (
	"errors"
	"io"
	"sync"
)

// errNoCloseNotify is a pod side that ended without a TLS close_notify: the
// pod went away, its stream was reset, or the connection through the API
// server broke. Only the close_notify says the pod finished.
var errNoCloseNotify = errors.New("the pod's side ended without a TLS close_notify")

// bridge sends what the local handshake left pending, then copies bytes both
// ways with half-closes passed on until both directions end. It returns the
// kubelet's explanation when it gave one.
func (f *Forwarder) bridge(local *localConn, pc *podConn, pending pendingLocal) error {
	defer pc.done()
	if pending.startup != nil {
		if _, err := pc.tls.Write(pending.startup); err != nil {
			pc.data.Reset()
			local.abort()
			return pc.kubelet.explain(err)
		}
	}
	pipe(local, pc, &f.budget, f.opts.Protocol)
	return pc.kubelet.wait()
}

// pipe copies both ways with kubectl port-forward's semantics: when the local
// client finishes sending, the pod gets a close_notify and the stream's write
// side closes, and the answer keeps flowing; when the pod side ends, the local
// connection is closed, since a pod that has finished — or died — will not
// read anything more. A pod that finished (its close_notify came) gets the
// client a close_notify too; any other end, or an error either way, aborts
// the local connection (a reset, no close_notify), so that a truncated answer
// is never passed off as a complete one. In PostgreSQL, the client is first
// told why with an ErrorResponse when the pod's side broke between two
// messages. pipe returns why the pod's side did not end cleanly, or nil.
func pipe(local *localConn, pod *podConn, budget *batchBudget, proto Protocol) error {
	var once sync.Once
	end := func(clean bool) {
		once.Do(func() {
			if clean {
				local.closeClean()
			} else {
				local.abort()
			}
			// A reset can wait behind a stalled write on the shared
			// connection; never let it block this connection's teardown.
			go pod.data.Reset()
		})
	}
	localDone := make(chan struct{})
	go func() {
		defer close(localDone)
		if err := relay(pod.tls, local.Conn, pod.stream, budget, &local.sent); err != nil {
			end(false)
			return
		}
		pod.tls.CloseWrite()
		pod.data.Close()
	}()
	var toLocal io.Writer = local.Conn
	var framing *backendFraming
	if proto == ProtocolPostgres {
		framing = &backendFraming{w: local.Conn}
		toLocal = framing
	}
	err := relay(toLocal, pod.tls, local.batch, budget, &local.received)
	if err == nil && pod.reader.ended.Load() {
		err = errNoCloseNotify
	}
	if err != nil && framing != nil && framing.atBoundary() {
		writePostgresError(local.Conn, "08006", "devmtls forward: lost the connection to pod "+pod.sess.pod.Name+": "+err.Error())
	}
	end(err == nil)
	<-localDone
	return err
}

// refuse tells a local client why its connection cannot be served, where the
// protocol has a way to say so.
func refuse(local *localConn, p Protocol, err error) {
	if p == ProtocolPostgres {
		writePostgresError(local, "08006", "devmtls forward: "+err.Error())
	}
}
