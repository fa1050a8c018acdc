package portforward

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Every hop of a forward is paid per write, not per byte: each write to the
// stream becomes a SPDY frame that the API server and the kubelet each handle
// with several system calls, and each write to a socket is a system call. A TLS
// connection reads and writes one record (at most 16 KiB) at a time. On a busy
// machine those calls, not the bytes or the cryptography, are what limits a
// forward. So each direction is copied by a relay that reads records while the
// previous write is still going, and writes everything gathered meanwhile in
// one go: when the far side keeps up every record leaves at once, when it does
// not, writes grow until they are few.

// A relay's reader waits when it has gathered its limit and the writer has
// not taken it yet. Big batches make a single transfer fast; many connections
// at once share a budget instead, so memory stays near kubectl's while each
// batch still spans several records.
const (
	relayMaxBatch = 256 << 10
	relayMinBatch = 32 << 10
	relayBudget   = 8 << 20 // for all of one Forwarder's relays together
)

// relayIdleRelease is how long a relay waits for data before it drops its
// batch buffers.
const relayIdleRelease = 250 * time.Millisecond

// batchBudget divides relayBudget among the relays running at a time.
type batchBudget struct {
	relays atomic.Int64
}

func (b *batchBudget) limit() int {
	n := b.relays.Load()
	if n < 1 {
		n = 1
	}
	return int(min(max(relayBudget/n, relayMinBatch), relayMaxBatch))
}

// relayReadSize is one read's buffer, held for as long as the connection is
// open: a TLS record (16 KiB plus overhead) or a good gulp from a socket.
const relayReadSize = 32 << 10

// relay copies src to dst until src ends (io.EOF: nil) or either side fails.
// batch, when not nil, is the connection under dst: a TLS write of many records
// is then sent as one write.
func relay(dst io.Writer, src io.Reader, batch *batchConn, budget *batchBudget) error {
	budget.relays.Add(1)
	defer budget.relays.Add(-1)
	r := &relayBuffer{budget: budget}
	r.cond.L = &r.mu
	go r.fill(src)
	var out []byte
	for {
		out = out[:0]
		r.mu.Lock()
		if len(r.gathered) == 0 && r.readErr == nil {
			// A connection that goes quiet gives its burst buffers back;
			// one that is merely between records keeps them.
			idle := time.AfterFunc(relayIdleRelease, func() {
				r.mu.Lock()
				r.idle = true
				r.cond.Signal()
				r.mu.Unlock()
			})
			for len(r.gathered) == 0 && r.readErr == nil {
				if r.idle {
					out, r.gathered = nil, nil
					if batch != nil {
						batch.release()
					}
					r.idle = false
				}
				r.cond.Wait()
			}
			idle.Stop()
			r.idle = false
		}
		out, r.gathered = r.gathered, out
		readErr := r.readErr
		r.cond.Signal() // room for the reader again
		r.mu.Unlock()

		if len(out) > 0 {
			if err := writeBatched(dst, out, batch); err != nil {
				r.stop()
				return err
			}
		}
		if readErr != nil {
			if readErr == io.EOF {
				return nil
			}
			return readErr
		}
	}
}

func writeBatched(dst io.Writer, p []byte, batch *batchConn) error {
	if batch == nil {
		_, err := dst.Write(p)
		return err
	}
	batch.begin()
	_, err := dst.Write(p)
	if ferr := batch.flush(); err == nil {
		err = ferr
	}
	return err
}

// relayBuffer is what a relay's reader has gathered and its writer not yet
// taken.
type relayBuffer struct {
	budget   *batchBudget
	mu       sync.Mutex
	cond     sync.Cond
	gathered []byte
	readErr  error // set once, after the last bytes
	idle     bool  // the writer has waited relayIdleRelease for data
	stopped  bool  // the writer failed: the reader stops at its next read
}

func (r *relayBuffer) fill(src io.Reader) {
	buf := make([]byte, relayReadSize)
	for {
		n, err := src.Read(buf)
		r.mu.Lock()
		for len(r.gathered) >= r.budget.limit() && !r.stopped {
			r.cond.Wait()
		}
		if r.stopped {
			r.mu.Unlock()
			return
		}
		r.gathered = append(r.gathered, buf[:n]...)
		if err != nil {
			r.readErr = err
		}
		r.cond.Signal()
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (r *relayBuffer) stop() {
	r.mu.Lock()
	r.stopped = true
	r.cond.Signal()
	r.mu.Unlock()
}

// batchConn gathers the writes made between begin and flush into one write to
// the connection under it, and reads through a buffer when given one.
// crypto/tls writes a record per Write, and may write from the reading side
// (alerts, key updates), hence the lock.
type batchConn struct {
	net.Conn
	in *bufio.Reader // nil: reads go straight to the connection

	mu       sync.Mutex
	batching bool
	pending  []byte
}

// newSocketBatchConn wraps a socket: reads fill a buffer, so that one system
// call brings in several TLS records.
func newSocketBatchConn(c net.Conn) *batchConn {
	return &batchConn{Conn: c, in: bufio.NewReaderSize(c, relayReadSize)}
}

func (c *batchConn) Read(p []byte) (int, error) {
	if c.in == nil {
		return c.Conn.Read(p)
	}
	return c.in.Read(p)
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		c.pending = append(c.pending, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// begin holds back writes until flush.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// release drops the buffer that batches were gathered in.
func (c *batchConn) release() {
	c.mu.Lock()
	if !c.batching {
		c.pending = nil
	}
	c.mu.Unlock()
}

// flush sends what begin held back as one write.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.pending)
	c.pending = c.pending[:0]
	return err
}
