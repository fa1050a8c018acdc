package portforward

import (
	"crypto/tls"
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
// at once share a budget instead, so memory stays near kubectl's. The floor
// is one TLS record: with a hundred or more busy connections the machine is
// saturated by connections, not by writes per connection, and every KiB a
// relay may hold is paid 400 times over (two relays per connection), twice
// with the GC's headroom (BenchmarkForwardMemory in test/e2e).
const (
	relayMaxBatch = 256 << 10
	relayMinBatch = 16 << 10
	relayBudget   = 8 << 20 // for all of one Forwarder's relays together
)

// relayIdleRelease is how long a relay waits for data before it drops its
// batch buffers.
const relayIdleRelease = 250 * time.Millisecond

// batchBudget is what one Forwarder's relays share: relayBudget, divided
// among the relays running at a time, and the chunks they read into.
type batchBudget struct {
	relays atomic.Int64
	record sync.Pool // *[]byte of tlsChunkSize: what one TLS read returns at most
	socket sync.Pool // *[]byte of socketChunkSize
}

func (b *batchBudget) limit() int {
	n := b.relays.Load()
	if n < 1 {
		n = 1
	}
	return int(min(max(relayBudget/n, relayMinBatch), relayMaxBatch))
}

// Chunk sizes: crypto/tls returns at most one record's plaintext per Read;
// a socket gives what it has.
const (
	tlsChunkSize    = 16 << 10
	socketChunkSize = 32 << 10
)

func (b *batchBudget) chunks(src io.Reader) (*sync.Pool, int) {
	if _, ok := src.(*tls.Conn); ok {
		return &b.record, tlsChunkSize
	}
	return &b.socket, socketChunkSize
}

// relay copies src to dst until src ends (io.EOF: nil) or either side fails.
// batch, when not nil, is the connection under dst: the TLS records of one
// batch are then sent as one write. count, when not nil, adds up the bytes
// written to dst.
func relay(dst io.Writer, src io.Reader, batch *batchConn, budget *batchBudget, count *atomic.Int64) error {
	budget.relays.Add(1)
	defer budget.relays.Add(-1)
	pool, size := budget.chunks(src)
	r := &relayBuffer{budget: budget, pool: pool, size: size}
	r.cond.L = &r.mu
	go r.fill(src)
	// A connection that goes quiet gives its batch buffer back; one that is
	// merely between records keeps it. One timer per relay, re-armed at each
	// wait, since waits come as often as records.
	idle := time.AfterFunc(relayIdleRelease, func() {
		r.mu.Lock()
		r.idle = true
		r.cond.Signal()
		r.mu.Unlock()
	})
	idle.Stop()
	defer idle.Stop()
	var taken []*[]byte
	for {
		r.mu.Lock()
		if len(r.queued) == 0 && r.readErr == nil {
			idle.Reset(relayIdleRelease)
			for len(r.queued) == 0 && r.readErr == nil {
				if r.idle && batch != nil {
					batch.release()
				}
				r.idle = false
				r.cond.Wait()
			}
			idle.Stop()
			r.idle = false
		}
		taken, r.queued = r.queued, taken[:0]
		r.held = 0
		readErr := r.readErr
		r.cond.Signal() // room for the reader again
		r.mu.Unlock()

		err := writeChunks(dst, taken, batch)
		if err == nil && count != nil {
			n := 0
			for _, c := range taken {
				n += len(*c)
			}
			count.Add(int64(n))
		}
		for i, c := range taken {
			pool.Put(c)
			taken[i] = nil
		}
		if err != nil {
			r.stop()
			return err
		}
		if readErr != nil {
			if readErr == io.EOF {
				return nil
			}
			return readErr
		}
	}
}

// writeChunks writes the chunks in order, as one write to batch's connection
// when there is one.
func writeChunks(dst io.Writer, chunks []*[]byte, batch *batchConn) error {
	if len(chunks) == 0 {
		return nil
	}
	if batch != nil {
		batch.begin()
	}
	var err error
	for _, c := range chunks {
		if _, err = dst.Write(*c); err != nil {
			break
		}
	}
	if batch != nil {
		if ferr := batch.flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// relayBuffer holds the chunks a relay's reader has filled and its writer
// not yet taken.
type relayBuffer struct {
	budget *batchBudget
	pool   *sync.Pool
	size   int

	mu      sync.Mutex
	cond    sync.Cond
	queued  []*[]byte // each sliced to what was read
	held    int       // chunk capacity queued: what the budget counts
	readErr error     // set once, after the last bytes
	idle    bool      // the writer has waited relayIdleRelease for data
	stopped bool      // the writer failed: the reader stops at its next read

	first [relayFirstRead]byte // what a read after a pause goes into
}

// relayFirstRead is the buffer a relay reads into after a pause: what a
// quiet connection keeps instead of a chunk (see fill).
const relayFirstRead = 1 << 10

func (r *relayBuffer) chunk() *[]byte {
	if c, ok := r.pool.Get().(*[]byte); ok {
		*c = (*c)[:r.size]
		return c
	}
	c := make([]byte, r.size)
	return &c
}

func (r *relayBuffer) fill(src io.Reader) {
	// A read that waits for the far side must not hold a chunk: with
	// hundreds of quiet connections open, a chunk parked in each blocked
	// read is most of what the relays keep. So after a read that did not
	// fill its chunk (the far side paused, or it speaks in small messages),
	// the next read goes into the relay's own small buffer, and only what
	// arrived is copied into a chunk. A read that fills the small buffer
	// means more is ready (the rest of a TLS record, decrypted already, or
	// more of the socket's data): the read after it takes a whole chunk
	// again, so a busy transfer keeps reading record by record.
	small := true
	for {
		var c *[]byte
		var n int
		var err error
		if small {
			n, err = src.Read(r.first[:])
			c = r.chunk()
			*c = append((*c)[:0], r.first[:n]...)
			small = n < len(r.first)
		} else {
			c = r.chunk()
			n, err = src.Read(*c)
			*c = (*c)[:n]
			small = n < r.size
		}
		r.mu.Lock()
		for r.held >= r.budget.limit() && !r.stopped {
			r.cond.Wait()
		}
		if r.stopped {
			r.mu.Unlock()
			r.pool.Put(c)
			return
		}
		if n > 0 {
			r.queued = append(r.queued, c)
			r.held += cap(*c)
		} else {
			r.pool.Put(c)
		}
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
// the connection under it.
// crypto/tls writes a record per Write, and may write from the reading side
// (alerts, key updates), hence the lock.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	batching bool
	pending  []byte
}

// newSocketBatchConn wraps a socket. Reads go straight to it: crypto/tls
// reads into its own record buffer, whose free room (tens of KiB once a
// transfer runs) already brings in several records per system call, so a
// buffer here would only add 32 KiB that every open connection keeps.
func newSocketBatchConn(c net.Conn) *batchConn {
	return &batchConn{Conn: c}
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
