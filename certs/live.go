package certs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devmtls/devmtls/internal/envdir"
)

// DefaultPollInterval is how often a Live source looks at the environment's
// files. A look costs one walk of the environment directory and a few small
// reads; a reload happens only when what it saw changed.
const DefaultPollInterval = time.Second

// renewRetry spaces out renewal attempts after one failed (a damaged file, a
// read-only file system), so a failing renewal neither spins nor floods the log.
const renewRetry = time.Minute

// LiveOptions configure a Live source.
type LiveOptions struct {
	// Service is the identity served: "" for the top-level one (the shared
	// keypair, or the host leaf in ca mode).
	Service string
	// Renew makes the source renew the credentials itself, under the store's
	// lock, once they enter the last third of their lifetime: a process that
	// serves them for weeks must not end up serving expired ones.
	Renew bool
	// Interval between looks at the files; 0 means DefaultPollInterval.
	Interval time.Duration
	// Logf receives one line per event (new credentials, a renewal) and one
	// per distinct problem, never one per look.
	Logf func(format string, args ...any)
	// OnChange runs after the source switched to other credentials (loaded
	// from disk or renewed by itself), from the goroutine that polls.
	OnChange func(ctx context.Context, c *Credentials)
}

// Live is an environment's dev credentials as a live source rather than a
// value copied at start, the way ghostunnel's certloader serves a keypair.
// Listeners take their TLS configuration from it for every new connection
// (ServerConfig), so after a rotation or renewal — by this process or any
// other — new connections present the new keypair and trust only the new
// anchors, while connections already open keep running.
//
// It notices changes by polling: every Interval it describes the
// environment's files (state.json, the ..data link, each file's size, time
// and mode) and reloads through Store.Load only when that description
// changed. Polling needs no platform support and sees every way the files can
// change, including a whole environment directory replaced, which a watch on
// one directory would miss. Whatever fails to load — a half-written or
// damaged file, a foreign link, a missing directory — never replaces the
// credentials it serves: it keeps the last good ones and logs once why.
type Live struct {
	store *Store
	opts  LiveOptions
	cur   atomic.Pointer[liveGeneration]

	mu          sync.Mutex // serialises Poll
	stamp       string     // what the files looked like at the last good load
	lastProblem string
	renewAfter  time.Time
}

// liveGeneration is one set of credentials and the server configuration made
// from it once, so a handshake only loads a pointer.
type liveGeneration struct {
	creds  *Credentials
	id     *Identity
	server *tls.Config
}

// NewLive makes a live source that starts with initial, credentials loaded
// from store. The first Poll reloads from disk, so a change between loading
// initial and calling NewLive is not missed.
func NewLive(store *Store, initial *Credentials, opts LiveOptions) (*Live, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	l := &Live{store: store, opts: opts}
	g, err := l.generation(initial)
	if err != nil {
		return nil, err
	}
	l.cur.Store(g)
	return l, nil
}

func (l *Live) generation(c *Credentials) (*liveGeneration, error) {
	id, err := c.Service(l.opts.Service)
	if err != nil {
		return nil, err
	}
	cfg := c.ServerConfig(id)
	// The store's clock decides validity for it as for renewal (tests move
	// it; nil is the real one).
	cfg.Time = l.store.Now
	// Session tickets of one generation must not resume under the next: a
	// resumed session carries the client certificate of its first
	// handshake, so a client whose keypair was rotated away could otherwise
	// keep getting in. crypto/tls gives a configuration returned by
	// GetConfigForClient the outer configuration's ticket keys unless it has
	// its own; recent Go also re-verifies the carried chain, and with keys of
	// its own per generation nothing depends on that.
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	cfg.SetSessionTicketKeys([][32]byte{key})
	return &liveGeneration{creds: c, id: id, server: cfg}, nil
}

// Current returns the credentials served now.
func (l *Live) Current() *Credentials { return l.cur.Load().creds }

// Identity returns the identity served now.
func (l *Live) Identity() *Identity { return l.cur.Load().id }

// Fingerprint is the SHA-256 fingerprint of the certificate served now.
func (l *Live) Fingerprint() string { return Fingerprint(l.cur.Load().id.Certificate) }

// ServerConfig is a TLS 1.2+ server configuration that, for each handshake,
// presents the current identity and verifies the client against the current
// trust anchors only.
func (l *Live) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.cur.Load().server, nil
		},
	}
}

// Run polls until ctx ends.
func (l *Live) Run(ctx context.Context) {
	t := time.NewTicker(l.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Poll(ctx)
		}
	}
}

// Poll takes one look: it renews the credentials when they are due (with
// Renew), and reloads them when the files changed.
func (l *Live) Poll(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opts.Renew {
		l.renewIfDue(ctx)
	}
	stamp := l.store.stamp()
	if stamp == l.stamp {
		return
	}
	c, err := l.store.Load(ctx)
	if err != nil {
		// The stamp is not kept, so the next look tries again: a problem
		// that goes away (a lock held for long, a file put back) heals.
		l.problem(err)
		return
	}
	l.stamp = stamp
	l.adopt(ctx, c)
}

// renewIfDue renews the credentials once they enter the last third of their
// lifetime. Ensure takes the store's lock and decides again under it, so a
// concurrent devmtls (which may have renewed them already) is safe.
func (l *Live) renewIfDue(ctx context.Context) {
	now := l.store.now()
	if now.Before(l.Current().RenewAt()) || now.Before(l.renewAfter) {
		return
	}
	res, err := l.store.Ensure(ctx, Request{})
	if err != nil {
		l.renewAfter = now.Add(renewRetry)
		l.problem(fmt.Errorf("renew them: %w", err))
		return
	}
	if res.Action != Unchanged {
		l.opts.Logf("renewed the dev credentials in %s (%s)", res.Credentials.Dir, res.Reason)
	}
	l.adopt(ctx, res.Credentials)
}

// adopt switches to c when it differs from what is served.
func (l *Live) adopt(ctx context.Context, c *Credentials) {
	cur := l.cur.Load()
	if l.lastProblem != "" {
		l.lastProblem = ""
		l.opts.Logf("the dev credentials in %s load again", c.Dir)
	}
	if sameCredentials(cur.creds, c) {
		return
	}
	g, err := l.generation(c)
	if err != nil {
		l.problem(err)
		return
	}
	l.cur.Store(g)
	l.opts.Logf("serving new dev credentials from %s (SHA-256 %s, valid until %s)", c.Dir, Fingerprint(g.id.Certificate),
		c.NotAfter.Local().Format("2006-01-02 15:04"))
	if l.opts.OnChange != nil {
		l.opts.OnChange(ctx, c)
	}
}

// problem logs once per distinct cause why the source keeps what it serves.
func (l *Live) problem(err error) {
	msg := err.Error()
	if msg == l.lastProblem {
		return
	}
	l.lastProblem = msg
	cur := l.Current()
	l.opts.Logf("keeping the dev credentials loaded before (SHA-256 %s, valid until %s): %s", cur.Fingerprint,
		cur.NotAfter.Local().Format("2006-01-02 15:04"), msg)
}

// sameCredentials reports whether a and b are the same generation: the same
// anchor and the same certificates for every identity.
func sameCredentials(a, b *Credentials) bool {
	if !a.CA.Equal(b.CA) || !a.Top.Certificate.Equal(b.Top.Certificate) || len(a.services) != len(b.services) {
		return false
	}
	for name, id := range a.services {
		other, ok := b.services[name]
		if !ok || !id.Certificate.Equal(other.Certificate) {
			return false
		}
	}
	return true
}

// RenewAt is when the credentials enter the last third of their lifetime,
// from which devmtls renews them.
func (c *Credentials) RenewAt() time.Time {
	return c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3)
}

// stamp describes, without reading any key, what decides the credentials on
// disk: state.json's content, the generation ..data names, and the type,
// size, time and mode of every file of that generation and of the visible
// names. Equal stamps mean nothing a load would see has changed. Problems
// become part of the stamp, so they too count as a change.
func (s *Store) stamp() string {
	h := sha256.New()
	d, err := envdir.Open(s.Dir)
	if err != nil {
		fmt.Fprintf(h, "open: %v", err)
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	defer d.Close()
	data, err := d.ReadFile(stateFile)
	fmt.Fprintf(h, "state %x %v\n", sha256.Sum256(data), err)
	target, err := d.Readlink(envdir.DataLink)
	fmt.Fprintf(h, "data %q %v\n", target, err)
	describe := func(name string) {
		fi, err := d.Lstat(name)
		if err != nil {
			fmt.Fprintf(h, "%s %v\n", name, err)
			return
		}
		fmt.Fprintf(h, "%s %v %d %d\n", name, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	}
	for _, name := range visibleNames {
		describe(name)
	}
	if st, err := parseState(d.Path(stateFile), data); err == nil {
		for _, rel := range slices.Sorted(maps.Keys(st.Files)) {
			if st.Version == flatStateVersion {
				describe(rel)
			} else {
				describe(st.Generation + "/" + rel)
			}
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
