package refresh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/connectord/connectord/connectors"
)

// ErrNoValidCredential is wrapped by every error Get returns for a
// connector that exists but has no usable credential right now: the fetch
// failed, timed out, or returned a credential already within its skew of
// expiry. It is never a not-found: the caller must not send docker to
// anonymous access.
var ErrNoValidCredential = errors.New("no valid credential")

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("credential cache closed")

// Defaults for Options.
const (
	DefaultWait         = 10 * time.Second
	DefaultFetchTimeout = 2 * time.Minute
	DefaultFailureHold  = time.Second
	DefaultIdleAfter    = time.Hour
)

// Clock is the time source; tests inject a fake one or run under
// testing/synctest with the real one.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the part of *time.Timer the Cache uses.
type Timer interface {
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc implements Clock.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Options configures a Cache. Zero values mean the defaults.
type Options struct {
	Clock  Clock        // nil: SystemClock
	Logger *slog.Logger // nil: discard
	// Rand returns values in [0, 1) for jitter; nil: math/rand/v2.
	Rand func() float64
	// Wait bounds how long a get that found no usable credential waits
	// for the fetch it started or joined (DefaultWait). The fetch goes on
	// after the get gave up, and its result serves later gets.
	Wait time.Duration
	// FetchTimeout bounds one fetch, as a backstop to the connector's own
	// timeout (DefaultFetchTimeout).
	FetchTimeout time.Duration
	// FailureHold: for this long after a failed fetch, a get that finds
	// no usable credential answers that failure instead of fetching again,
	// so a failing source is not called once per pull
	// (DefaultFailureHold; negative: never hold).
	FailureHold time.Duration
	// IdleAfter: a credential that no get has used for this long is no
	// longer renewed; it is dropped when it expires (DefaultIdleAfter).
	// Renewing what nobody uses would only load the source.
	IdleAfter time.Duration
}

// Request is one get, with what the Cache needs to answer it and to renew
// what it fetches.
type Request struct {
	// Source identifies the connector and its definition: entries,
	// flights and status belong to a source, and Retain keeps or drops
	// whole sources. A changed definition must use a new Source.
	Source string
	// Name is the connector's name, for logs and errors.
	Name string
	// Keys are looked up in order, most specific first (the kubelet's
	// order: image, registry, global); the first usable credential wins.
	Keys []string
	// FlightKey: concurrent gets that miss with the same FlightKey share
	// one fetch. Empty means Keys[0].
	FlightKey string
	// Fetch gets a new credential. Its errors are expected to name the
	// connector already (connectors.Instance.Credentials does). It is also
	// what background renewals call, so it must not depend on the context
	// of the get that first ran it beyond the ctx it is given.
	Fetch func(ctx context.Context) (connectors.Credentials, error)
	// Store returns the key to keep a fetched credential under (one of
	// Keys, chosen by the credential's Scope), or "" not to keep it.
	// Nil: Keys[0], and ScopeNone is never kept.
	Store func(connectors.Credentials) string
	// Lifetime applies to a credential without ExpiresAt: it expires
	// Lifetime after the fetch started (expiration_seconds). Zero: such
	// a credential never expires and is never renewed.
	Lifetime time.Duration
	// Skew is the skew tolerance for a credential of the given lifetime
	// (connectors.Instance.SkewTolerance). Nil: connectors.SkewFor.
	Skew func(lifetime time.Duration) time.Duration
}

func (r *Request) flightKey() string {
	if r.FlightKey != "" {
		return r.FlightKey
	}
	if len(r.Keys) > 0 {
		return r.Keys[0]
	}
	return ""
}

func (r *Request) storeKey(c connectors.Credentials) string {
	if c.Scope == connectors.ScopeNone {
		return ""
	}
	if r.Store != nil {
		return r.Store(c)
	}
	if len(r.Keys) > 0 {
		return r.Keys[0]
	}
	return ""
}

func (r *Request) skew(life time.Duration) time.Duration {
	if r.Skew != nil {
		return r.Skew(life)
	}
	return connectors.SkewFor(life)
}

// Status is a source's refresh state, for `connectord status`. Zero
// times mean "never" or "none".
type Status struct {
	// ExpiresAt is the earliest expiry among the source's credentials.
	ExpiresAt time.Time
	// LastRefresh is the last successful fetch.
	LastRefresh time.Time
	// NextRefresh is the earliest scheduled renewal or retry; a time in
	// the past means one is running now.
	NextRefresh time.Time
	// LastError and LastErrorAt describe the last failed fetch; they are
	// kept after a later success so that status can show what happened.
	LastError   error
	LastErrorAt time.Time
	// Attempts counts failed fetches since the last success.
	Attempts int
	// Credentials is the number of credentials held.
	Credentials int
}

// Cache holds expiring credentials per source and key. Create it with
// New; it is safe for concurrent use.
type Cache struct {
	clock  Clock
	log    *slog.Logger
	rand   func() float64
	opts   Options
	ctx    context.Context // cancelled by Close: stops every fetch
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	keep    func(source string) bool // nil: every source is admitted
	sources map[string]*source
	flights map[flightKey]*flight
}

type flightKey struct{ source, key string }

// source is one connector's state.
type source struct {
	id, name    string
	entries     map[string]*entry
	failed      map[string]failure // by flight key, for FailureHold
	lastRefresh time.Time
	lastErr     error
	lastErrAt   time.Time
	attempts    int
}

type failure struct {
	at  time.Time
	err error
}

// entry is one credential and its renewal timer.
type entry struct {
	src      *source
	key      string
	req      Request // re-run to renew
	cred     connectors.Credentials
	issued   time.Time
	expires  time.Time // zero: never
	skew     time.Duration
	lastUsed time.Time
	attempts int       // failed renewals in a row, for the backoff
	next     time.Time // when the timer fires or fired (renewal running); zero when none is due
	timer    Timer
	gen      uint64 // bumped whenever the timer is re-armed or stopped, so a stale callback does nothing
}

func (e *entry) usable(now time.Time) bool { return Usable(now, e.expires, e.skew) }

// flight is one fetch in progress; done is closed when cred/err are set.
type flight struct {
	done chan struct{}
	cred connectors.Credentials
	err  error
	// refreshing lists the entries this fetch renews, to re-arm their
	// timers (success or retry) when it completes.
	refreshing []*entry
	// fromGet: a get is waiting, so the result counts as used.
	fromGet bool
}

// New returns an empty cache.
func New(opts Options) *Cache {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultWait
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.FailureHold == 0 {
		opts.FailureHold = DefaultFailureHold
	}
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = DefaultIdleAfter
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Cache{
		clock: opts.Clock, log: opts.Logger, rand: opts.Rand, opts: opts,
		ctx: ctx, cancel: cancel,
		sources: map[string]*source{}, flights: map[flightKey]*flight{},
	}
}

// Get returns a usable credential for req: a cached one under the first
// of req.Keys that holds one, else the result of a fetch (started, or
// shared with concurrent gets) awaited for at most Options.Wait. It never
// returns a credential within its skew tolerance of expiry; when it has
// none to give, its error wraps ErrNoValidCredential and says why,
// including the last fetch error.
func (c *Cache) Get(ctx context.Context, req Request) (connectors.Credentials, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return connectors.Credentials{}, ErrClosed
	}
	now := c.clock.Now()
	src := c.sources[req.Source]
	if src != nil {
		for _, k := range req.Keys {
			if e := src.entries[k]; e != nil && e.usable(now) {
				e.lastUsed = now
				cred := e.cred
				c.mu.Unlock()
				return cred, nil
			}
		}
		if fl, ok := src.failed[req.flightKey()]; ok && c.opts.FailureHold > 0 && now.Sub(fl.at) < c.opts.FailureHold {
			_, inFlight := c.flights[flightKey{req.Source, req.flightKey()}]
			if !inFlight {
				c.mu.Unlock()
				return connectors.Credentials{}, fmt.Errorf("%w: %w (failed %s ago; not retried for %s)",
					ErrNoValidCredential, fl.err, now.Sub(fl.at).Round(time.Millisecond), c.opts.FailureHold)
			}
		}
	}
	f := c.flightLocked(req, nil)
	f.fromGet = true
	c.mu.Unlock()
	return c.wait(ctx, &req, f)
}

func (c *Cache) wait(ctx context.Context, req *Request, f *flight) (connectors.Credentials, error) {
	timeout := make(chan struct{})
	t := c.clock.AfterFunc(c.opts.Wait, func() { close(timeout) })
	defer t.Stop()
	select {
	case <-f.done:
		if f.err != nil {
			return connectors.Credentials{}, f.err
		}
		return f.cred, nil
	case <-timeout:
		return connectors.Credentials{}, fmt.Errorf("%w: connector %q: no credential within %s (the fetch goes on; a later get may find its result)",
			ErrNoValidCredential, req.Name, c.opts.Wait)
	case <-ctx.Done():
		return connectors.Credentials{}, fmt.Errorf("%w: connector %q: %w", ErrNoValidCredential, req.Name, context.Cause(ctx))
	}
}

// flightLocked joins the fetch in progress for req's flight key, or starts
// one. renew, when not nil, is an entry this fetch renews.
func (c *Cache) flightLocked(req Request, renew *entry) *flight {
	fk := flightKey{req.Source, req.flightKey()}
	f := c.flights[fk]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flights[fk] = f
		go c.run(fk, req, f)
	}
	if renew != nil {
		f.refreshing = append(f.refreshing, renew)
	}
	return f
}

// run performs one fetch and files its result.
func (c *Cache) run(fk flightKey, req Request, f *flight) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.FetchTimeout)
	start := c.clock.Now()
	cred, err := c.fetch(ctx, &req)
	cancel()

	c.mu.Lock()
	defer close(f.done)
	defer c.mu.Unlock()
	now := c.clock.Now()
	if c.flights[fk] == f {
		delete(c.flights, fk)
	}
	var skew time.Duration
	if err == nil {
		if cred.ExpiresAt.IsZero() && req.Lifetime > 0 {
			cred.ExpiresAt = start.Add(req.Lifetime)
		}
		if !cred.ExpiresAt.IsZero() {
			skew = req.skew(cred.ExpiresAt.Sub(start))
			if !Usable(now, cred.ExpiresAt, skew) {
				err = fmt.Errorf("connector %q: the credential it returned expires at %s, within its skew tolerance of %s",
					req.Name, cred.ExpiresAt.UTC().Format(time.RFC3339), skew)
			}
		}
	}
	src := c.sourceLocked(&req)
	trigger := "get"
	if !f.fromGet {
		trigger = "refresh"
	}

	if err != nil {
		f.err = fmt.Errorf("%w: %w", ErrNoValidCredential, err)
		attempts := 0
		if src != nil {
			src.lastErr, src.lastErrAt = err, now
			src.attempts++
			attempts = src.attempts
			src.failed[fk.key] = failure{at: now, err: err}
		}
		for _, e := range f.refreshing {
			c.retryLocked(e, now)
		}
		args := []any{"connector", req.Name, "key", fk.key, "trigger", trigger, "attempt", attempts, "err", err}
		for _, e := range f.refreshing {
			if c.liveLocked(e) {
				args = append(args, "expires", e.expires, "retry_at", e.next)
				break
			}
		}
		c.log.Warn("credential fetch failed", args...)
		return
	}

	f.cred = cred
	if src == nil {
		// The connector was removed while it fetched: answer the gets
		// that asked, keep nothing.
		return
	}
	src.lastRefresh = now
	src.attempts = 0
	delete(src.failed, fk.key)
	key := req.storeKey(cred)
	var stored *entry
	if key != "" {
		e := src.entries[key]
		if e == nil {
			e = &entry{src: src, key: key, lastUsed: now}
			src.entries[key] = e
		}
		e.req, e.cred, e.issued, e.expires, e.skew, e.attempts = req, cred, start, cred.ExpiresAt, skew, 0
		if f.fromGet {
			e.lastUsed = now
		}
		c.scheduleLocked(e, now)
		stored = e
	}
	for _, old := range f.refreshing {
		// A renewal whose answer came back under another scope: the new
		// entry replaces the old one rather than leaving it to lapse.
		if old != stored && c.liveLocked(old) {
			c.dropLocked(old)
		}
	}
	c.log.Info("credential fetched", "connector", req.Name, "key", key, "trigger", trigger,
		"scope", cred.Scope.String(), "expires", cred.ExpiresAt, "next_refresh", nextOf(stored))
}

// fetch calls req.Fetch, turning a panic into an error: a connector bug
// must fail one fetch, not take the daemon down or leave the flight open
// forever with every later get joining it.
func (c *Cache) fetch(ctx context.Context, req *Request) (cred connectors.Credentials, err error) {
	defer func() {
		if v := recover(); v != nil {
			// The panic value may quote a secret; log its type and the
			// stack only.
			c.log.Error("connector panicked while fetching", "connector", req.Name, "panic_type", fmt.Sprintf("%T", v), "stack", string(debug.Stack()))
			cred, err = connectors.Credentials{}, fmt.Errorf("connector %q: internal error while fetching credentials; see the daemon log", req.Name)
		}
	}()
	return req.Fetch(ctx)
}

func nextOf(e *entry) any {
	if e == nil || e.next.IsZero() {
		return "none"
	}
	return e.next
}

// sourceLocked returns req's source, creating it if the source is
// admitted; nil after Close or for a source that Retain dropped.
func (c *Cache) sourceLocked(req *Request) *source {
	if c.closed {
		return nil
	}
	if s := c.sources[req.Source]; s != nil {
		return s
	}
	if c.keep != nil && !c.keep(req.Source) {
		return nil
	}
	s := &source{id: req.Source, name: req.Name, entries: map[string]*entry{}, failed: map[string]failure{}}
	c.sources[req.Source] = s
	return s
}

// liveLocked reports whether e is still the cache's entry for its key.
func (c *Cache) liveLocked(e *entry) bool {
	return !c.closed && c.sources[e.src.id] == e.src && e.src.entries[e.key] == e
}

// scheduleLocked arms e's renewal after a successful fetch.
func (c *Cache) scheduleLocked(e *entry, now time.Time) {
	if e.expires.IsZero() {
		c.disarmLocked(e) // never expires: nothing to renew
		return
	}
	c.armLocked(e, RefreshTime(e.issued, e.expires, e.skew, c.rand()*MaxJitter), now)
}

// retryLocked arms e's next attempt after a failed renewal.
func (c *Cache) retryLocked(e *entry, now time.Time) {
	if !c.liveLocked(e) {
		return
	}
	e.attempts++
	c.armLocked(e, now.Add(RetryDelay(e.attempts, now, e.expires, e.skew, c.rand)), now)
}

func (c *Cache) armLocked(e *entry, at, now time.Time) {
	c.disarmLocked(e)
	gen := e.gen
	e.next = at
	e.timer = c.clock.AfterFunc(max(at.Sub(now), 0), func() { c.fire(e, gen) })
}

func (c *Cache) disarmLocked(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.gen++
	e.next = time.Time{}
}

func (c *Cache) dropLocked(e *entry) {
	c.disarmLocked(e)
	if e.src.entries[e.key] == e {
		delete(e.src.entries, e.key)
	}
}

// fire runs when e's timer expires: renew it, or let an idle one lapse.
func (c *Cache) fire(e *entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gen != gen || !c.liveLocked(e) {
		return // re-armed, dropped or closed since
	}
	// e.next keeps the time the timer was due until the fetch re-arms
	// it: status then shows a renewal in progress as due, not as "none".
	e.timer = nil
	now := c.clock.Now()
	if now.Sub(e.lastUsed) >= c.opts.IdleAfter {
		if e.expires.IsZero() || !now.Before(e.expires) {
			c.log.Debug("idle credential dropped", "connector", e.src.name, "key", e.key)
			c.dropLocked(e)
			return
		}
		// Nobody has asked for it lately: keep it while it lasts, but do
		// not call the source for it; look again when it expires.
		c.armLocked(e, e.expires, now)
		return
	}
	c.flightLocked(e.req, e)
}

// Status returns source's refresh state; false when the cache holds
// nothing for it (never fetched, or dropped).
func (c *Cache) Status(source string) (Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sources[source]
	if s == nil {
		return Status{}, false
	}
	st := Status{LastRefresh: s.lastRefresh, LastError: s.lastErr, LastErrorAt: s.lastErrAt, Attempts: s.attempts, Credentials: len(s.entries)}
	for _, e := range s.entries {
		if !e.expires.IsZero() && (st.ExpiresAt.IsZero() || e.expires.Before(st.ExpiresAt)) {
			st.ExpiresAt = e.expires
		}
		if !e.next.IsZero() && (st.NextRefresh.IsZero() || e.next.Before(st.NextRefresh)) {
			st.NextRefresh = e.next
		}
	}
	return st, true
}

// Retain keeps the sources for which keep returns true and drops the
// others now: their timers stop, so a connector removed from the config
// stops refreshing. keep also governs the future: a fetch for a source it
// rejects (one in progress while the connector was removed, or a get
// still running on the old connector set) answers its gets but keeps
// nothing. A later Retain replaces keep.
func (c *Cache) Retain(keep func(source string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep = keep
	for id, s := range c.sources {
		if keep != nil && !keep(id) {
			c.dropSourceLocked(s)
		}
	}
}

// Forget drops everything held for source now. Unlike Retain it does not
// refuse the source later: the next get fetches afresh.
func (c *Cache) Forget(source string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sources[source]; s != nil {
		c.dropSourceLocked(s)
	}
}

func (c *Cache) dropSourceLocked(s *source) {
	for _, e := range s.entries {
		c.disarmLocked(e)
	}
	delete(c.sources, s.id)
	c.log.Debug("connector's credentials dropped", "connector", s.name)
}

// Close stops every timer and cancels every fetch in progress; Get then
// returns ErrClosed.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.cancel()
	for _, s := range c.sources {
		c.dropSourceLocked(s)
	}
}
