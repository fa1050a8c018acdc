package portforward

import (
	"bufio"
	"io"
	"net"
	"sync"
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

// relayLimit bounds what a relay holds: the reader waits when this much is
// gathered and not yet written.
const relayLimit = 256 << 10

// relayReadSize is one read's buffer: a TLS record (16 KiB plus overhead) or a
// good gulp from a socket.
const relayReadSize = 64 << 10

// relay copies src to dst until src ends (io.EOF: nil) or either side fails.
// batch, when not nil, is the connection under dst: a TLS write of many records
// is then sent as one write.
func relay(dst io.Writer, src io.Reader, batch *batchConn) error {
	r := &relayBuffer{}
	r.cond.L = &r.mu
	go r.fill(src)
	var out []byte
	for {
		out = out[:0]
		r.mu.Lock()
		for len(r.gathered) == 0 && r.readErr == nil {
			r.cond.Wait()
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
	mu       sync.Mutex
	cond     sync.Cond
	gathered []byte
	readErr  error // set once, after the last bytes
	stopped  bool  // the writer failed: the reader stops at its next read
}

func (r *relayBuffer) fill(src io.Reader) {
	buf := make([]byte, relayReadSize)
	for {
		n, err := src.Read(buf)
		r.mu.Lock()
		for len(r.gathered) >= relayLimit && !r.stopped {
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
