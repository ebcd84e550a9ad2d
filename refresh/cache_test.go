package refresh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/refresh"
	"github.com/connectord/connectord/secret"
)

// The Cache tests run in a synctest bubble: time.Now and timers are
// virtual and advance only when every goroutine in the bubble is blocked,
// so a test that "waits" an hour takes microseconds and the schedule is
// exact. The sources are fakes: a real socket or process would stop the
// bubble's clock.

const secretText = "s3cr3t-value"

// source is a fake credential source. Each call mints u<N>, valid for
// life; fail and delay shape the next calls.
type source struct {
	mu      sync.Mutex
	life    time.Duration // 0: the credential states no expiry
	delay   time.Duration
	fail    error
	scope   connectors.CacheScope
	calls   []time.Time
	expired bool // return credentials that are already expired
	panics  bool
}

func (s *source) fetch(ctx context.Context) (connectors.Credentials, error) {
	s.mu.Lock()
	s.calls = append(s.calls, time.Now())
	n, delay, fail, life, scope, expired, panics := len(s.calls), s.delay, s.fail, s.life, s.scope, s.expired, s.panics
	s.mu.Unlock()
	if panics {
		panic("boom " + secretText)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return connectors.Credentials{}, ctx.Err()
		}
	}
	if fail != nil {
		return connectors.Credentials{}, fail
	}
	c := connectors.Credentials{Username: fmt.Sprintf("u%d", n), Secret: secret.New(secretText), Scope: scope}
	if life > 0 {
		c.ExpiresAt = time.Now().Add(life)
	}
	if expired {
		c.ExpiresAt = time.Now().Add(-time.Second)
	}
	return c, nil
}

func (s *source) set(f func(*source)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *source) offsets(start time.Time) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, c := range s.calls {
		out = append(out, c.Sub(start))
	}
	return out
}

func req(name string, s *source) refresh.Request {
	return refresh.Request{Source: name + "#1", Name: name, Keys: []string{"registry r.example"}, Fetch: s.fetch}
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newCache returns a cache with no jitter (Rand 0: renewal at exactly
// two-thirds; retries at half their nominal delay unless rnd says
// otherwise) whose log is checked for secrets at the end.
func newCache(t *testing.T, opts refresh.Options) *refresh.Cache {
	t.Helper()
	logs := &logBuffer{}
	if opts.Rand == nil {
		opts.Rand = func() float64 { return 0 }
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := refresh.New(opts)
	t.Cleanup(func() {
		c.Close()
		if strings.Contains(logs.String(), secretText) {
			t.Errorf("a secret reached the log:\n%s", logs)
		}
	})
	return c
}

func mustGet(t *testing.T, c *refresh.Cache, r refresh.Request) connectors.Credentials {
	t.Helper()
	cred, err := c.Get(t.Context(), r)
	if err != nil {
		t.Fatalf("Get at %s: %v", time.Now().Format(time.TimeOnly), err)
	}
	return cred
}

func TestRenewsAtTwoThirdsInTheBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: 30 * time.Second}
		c := newCache(t, refresh.Options{})
		r := req("lab", src)
		start := time.Now()
		if got := mustGet(t, c, r); got.Username != "u1" {
			t.Fatalf("first get = %s", got.Username)
		}
		st, _ := c.Status(r.Source)
		if want := start.Add(20 * time.Second); !st.NextRefresh.Equal(want) || !st.ExpiresAt.Equal(start.Add(30*time.Second)) {
			t.Fatalf("status after the first fetch: next %s expires %s", st.NextRefresh, st.ExpiresAt)
		}
		for i := range 50 {
			time.Sleep(time.Second)
			// Gets keep the credential in use and are answered from memory.
			cred := mustGet(t, c, r)
			if !refresh.Usable(time.Now(), cred.ExpiresAt, 30*time.Second/4) {
				t.Fatalf("at +%ds: handed out %s expiring at %s", i+1, cred.Username, cred.ExpiresAt)
			}
		}
		synctest.Wait()
		want := []time.Duration{0, 20 * time.Second, 40 * time.Second}
		if got := src.offsets(start); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("source called at %v, want %v (every two-thirds of 30s, not once per get)", got, want)
		}
		if got := mustGet(t, c, r); got.Username != "u3" {
			t.Fatalf("after two renewals get = %s, want u3", got.Username)
		}
	})
}

func TestJitterSpreadsRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: 100 * time.Second}
		c := newCache(t, refresh.Options{Rand: func() float64 { return 0.999 }})
		start := time.Now()
		mustGet(t, c, req("lab", src))
		st, _ := c.Status("lab#1")
		got := st.NextRefresh.Sub(start)
		if got < 56*time.Second || got > 57*time.Second {
			t.Fatalf("with jitter near its maximum the renewal is at +%s, want about +56.7s", got)
		}
	})
}

func TestHundredConcurrentGetsShareOneFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: time.Hour, delay: 2 * time.Second}
		c := newCache(t, refresh.Options{})
		r := req("lab", src)
		var wg sync.WaitGroup
		users := make(chan string, 100)
		for range 100 {
			wg.Go(func() {
				cred, err := c.Get(context.Background(), r)
				if err != nil {
					t.Error(err)
					return
				}
				users <- cred.Username
			})
		}
		wg.Wait()
		close(users)
		for u := range users {
			if u != "u1" {
				t.Errorf("a waiter got %s, want u1", u)
			}
		}
		if n := src.count(); n != 1 {
			t.Fatalf("100 concurrent gets caused %d fetches, want 1", n)
		}
	})
}

func TestExpiredCredentialNeverReturned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 60 s lifetime: default skew 15 s, usable until +45 s, renewal
		// due at +40 s. The source fails from +30 s on.
		src := &source{life: time.Minute}
		c := newCache(t, refresh.Options{})
		r := req("lab", src)
		start := time.Now()
		mustGet(t, c, r)
		time.Sleep(30 * time.Second)
		src.set(func(s *source) { s.fail = errors.New("issuer: token service down") })
		for time.Since(start) < 45*time.Second {
			cred := mustGet(t, c, r)
			if cred.Username != "u1" || !refresh.Usable(time.Now(), cred.ExpiresAt, 15*time.Second) {
				t.Fatalf("at +%s got %s expiring %s", time.Since(start), cred.Username, cred.ExpiresAt)
			}
			time.Sleep(500 * time.Millisecond)
		}
		for range 20 {
			_, err := c.Get(context.Background(), r)
			if !errors.Is(err, refresh.ErrNoValidCredential) || !strings.Contains(err.Error(), "token service down") {
				t.Fatalf("at +%s: Get = %v, want ErrNoValidCredential with the last error", time.Since(start), err)
			}
			time.Sleep(700 * time.Millisecond)
		}
		st, _ := c.Status(r.Source)
		if st.Attempts == 0 || st.LastError == nil || !strings.Contains(st.LastError.Error(), "token service down") || st.LastErrorAt.IsZero() {
			t.Fatalf("status = %+v, want the failure recorded", st)
		}
	})
}

func TestCredentialExpiredOnArrivalIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: time.Minute, expired: true}
		c := newCache(t, refresh.Options{})
		_, err := c.Get(context.Background(), req("lab", src))
		if !errors.Is(err, refresh.ErrNoValidCredential) || !strings.Contains(err.Error(), "within its skew tolerance") {
			t.Fatalf("Get = %v", err)
		}
	})
}

func TestBackoffIsCappedAtExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: time.Minute}
		// rnd 0.5: retry delays are their nominal 1 s, 2 s, 4 s, 8 s...
		c := newCache(t, refresh.Options{Rand: func() float64 { return 0.5 }})
		r := req("lab", src)
		start := time.Now()
		mustGet(t, c, r)
		// rnd 0.5 also means jitter 0.05: renewal at (2/3-0.05)*60 = 37 s.
		time.Sleep(30 * time.Second)
		src.set(func(s *source) { s.fail = errors.New("down") })
		time.Sleep(40 * time.Second)
		synctest.Wait()
		// Failed renewal at 37; retries 1 s, 2 s and 4 s later (38, 40,
		// 44); the next, 8 s later at 52, is capped to 45 = expiry - skew,
		// the last moment the credential is usable; after that there is
		// nothing left to save and the backoff runs uncapped: 16 s, to 61.
		want := []time.Duration{0, 37 * time.Second, 38 * time.Second, 40 * time.Second, 44 * time.Second, 45 * time.Second, 61 * time.Second}
		if got := src.offsets(start); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("source called at %v, want %v", got, want)
		}
	})
}

func TestRecoversWithoutRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: 20 * time.Second, fail: errors.New("down")}
		c := newCache(t, refresh.Options{})
		r := req("lab", src)
		if _, err := c.Get(context.Background(), r); !errors.Is(err, refresh.ErrNoValidCredential) {
			t.Fatalf("Get while failing = %v", err)
		}
		// Within the failure hold a get answers the failure without
		// calling the source again.
		if _, err := c.Get(context.Background(), r); !errors.Is(err, refresh.ErrNoValidCredential) || !strings.Contains(err.Error(), "not retried for") {
			t.Fatalf("Get within the hold = %v", err)
		}
		if n := src.count(); n != 1 {
			t.Fatalf("%d calls within the failure hold, want 1", n)
		}
		src.set(func(s *source) { s.fail = nil })
		time.Sleep(refresh.DefaultFailureHold)
		if got := mustGet(t, c, r); got.Username != "u2" {
			t.Fatalf("after recovery get = %s", got.Username)
		}
		st, _ := c.Status(r.Source)
		if st.Attempts != 0 || st.LastError == nil || st.LastRefresh.IsZero() {
			t.Fatalf("status after recovery = %+v: want attempts reset, last error kept", st)
		}
	})
}

func TestWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: time.Hour, delay: 25 * time.Second}
		c := newCache(t, refresh.Options{})
		r := req("slow", src)
		start := time.Now()
		_, err := c.Get(context.Background(), r)
		if !errors.Is(err, refresh.ErrNoValidCredential) || !strings.Contains(err.Error(), "no credential within 10s") {
			t.Fatalf("Get = %v", err)
		}
		if waited := time.Since(start); waited != refresh.DefaultWait {
			t.Fatalf("waited %s, want %s", waited, refresh.DefaultWait)
		}
		// The fetch went on; once done its result serves gets.
		time.Sleep(20 * time.Second)
		if got := mustGet(t, c, r); got.Username != "u1" || src.count() != 1 {
			t.Fatalf("after the slow fetch: %s with %d calls", got.Username, src.count())
		}
	})
}

func TestGetHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: time.Hour, delay: 5 * time.Second}
		c := newCache(t, refresh.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := c.Get(ctx, req("slow", src)); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, refresh.ErrNoValidCredential) {
			t.Fatalf("Get = %v", err)
		}
	})
}

func TestRetainStopsRemovedConnectors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kept, removed := &source{life: 30 * time.Second}, &source{life: 30 * time.Second}
		c := newCache(t, refresh.Options{})
		rk, rr := req("kept", kept), req("removed", removed)
		mustGet(t, c, rk)
		mustGet(t, c, rr)
		c.Retain(func(s string) bool { return s == rk.Source })
		if _, ok := c.Status(rr.Source); ok {
			t.Fatal("a removed connector still has status")
		}
		for range 60 {
			time.Sleep(time.Second)
			mustGet(t, c, rk)
		}
		synctest.Wait()
		if n := removed.count(); n != 1 {
			t.Fatalf("the removed connector's source was called %d times, want 1", n)
		}
		if n := kept.count(); n != 4 {
			t.Fatalf("the kept connector's source was called %d times in 60 s, want 4", n)
		}
		// A get still running on the old connector set is answered but
		// leaves nothing behind to refresh.
		mustGet(t, c, rr)
		if _, ok := c.Status(rr.Source); ok {
			t.Fatal("a get for a removed connector was cached")
		}
		c.Forget(rk.Source)
		if _, ok := c.Status(rk.Source); ok {
			t.Fatal("Forget kept the status")
		}
	})
}

func TestIdleCredentialsAreNotRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: 30 * time.Second}
		c := newCache(t, refresh.Options{IdleAfter: time.Minute})
		r := req("lab", src)
		mustGet(t, c, r)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		// Renewed at +20 and +40; at +60 it had not been used for a
		// minute, so it lapsed at +70.
		if n := src.count(); n != 3 {
			t.Fatalf("%d calls for an idle credential, want 3", n)
		}
		if st, _ := c.Status(r.Source); st.Credentials != 0 {
			t.Fatalf("idle credential still held: %+v", st)
		}
		if got := mustGet(t, c, r); got.Username != "u4" {
			t.Fatalf("get after lapse = %s", got.Username)
		}
	})
}

func TestScopes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: time.Hour}
		c := newCache(t, refresh.Options{})
		keys := func(repo string) []string { return []string{"image r.example/" + repo, "registry r.example", "global"} }
		request := func(repo string) refresh.Request {
			return refresh.Request{Source: "k#1", Name: "k", Keys: keys(repo), Fetch: src.fetch,
				Store: func(cr connectors.Credentials) string {
					switch cr.Scope {
					case connectors.ScopeImage:
						return keys(repo)[0]
					case connectors.ScopeGlobal:
						return "global"
					default:
						return "registry r.example"
					}
				}}
		}
		steps := []struct {
			scope connectors.CacheScope
			repo  string
			user  string
		}{
			{connectors.ScopeImage, "a", "u1"},
			{connectors.ScopeImage, "a", "u1"},    // image key hit
			{connectors.ScopeRegistry, "b", "u2"}, // no image key for b: fetch, kept per registry
			{connectors.ScopeRegistry, "c", "u2"}, // registry key serves another repository
			{connectors.ScopeImage, "a", "u1"},    // the image key still comes first
			{connectors.ScopeNone, "d", "u2"},     // registry key hit; scope none is never even fetched
		}
		for i, s := range steps {
			src.set(func(x *source) { x.scope = s.scope })
			if got := mustGet(t, c, request(s.repo)); got.Username != s.user {
				t.Fatalf("step %d (%s %s): got %s, want %s", i, s.scope, s.repo, got.Username, s.user)
			}
		}
		none := &source{life: time.Hour, scope: connectors.ScopeNone}
		r := req("nocache", none)
		mustGet(t, c, r)
		mustGet(t, c, r)
		if n := none.count(); n != 2 {
			t.Fatalf("scope none: %d calls for 2 gets, want 2", n)
		}
	})
}

func TestLifetimeAppliesWhenTheSourceStatesNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{}
		c := newCache(t, refresh.Options{})
		r := req("lab", src)
		r.Lifetime = 30 * time.Second
		start := time.Now()
		if got := mustGet(t, c, r); !got.ExpiresAt.Equal(start.Add(30 * time.Second)) {
			t.Fatalf("ExpiresAt = %s, want start+30s", got.ExpiresAt)
		}
		time.Sleep(21 * time.Second)
		synctest.Wait()
		if n := src.count(); n != 2 {
			t.Fatalf("%d calls, want a renewal at two-thirds of the configured lifetime", n)
		}
	})
}

func TestPanickingFetchIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: time.Hour, panics: true}
		c := newCache(t, refresh.Options{FailureHold: -1})
		r := req("buggy", src)
		if _, err := c.Get(context.Background(), r); !errors.Is(err, refresh.ErrNoValidCredential) || !strings.Contains(err.Error(), "internal error") || strings.Contains(err.Error(), secretText) {
			t.Fatalf("Get = %v", err)
		}
		src.set(func(s *source) { s.panics = false })
		if got := mustGet(t, c, r); got.Username != "u2" {
			t.Fatalf("after the panic: %s", got.Username)
		}
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: 30 * time.Second}
		c := newCache(t, refresh.Options{})
		r := req("lab", src)
		mustGet(t, c, r)
		c.Close()
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := src.count(); n != 1 {
			t.Fatalf("%d calls after Close, want none after the first", n)
		}
		if _, err := c.Get(context.Background(), r); !errors.Is(err, refresh.ErrClosed) {
			t.Fatalf("Get after Close = %v", err)
		}
	})
}

func TestStatusDuringRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{life: 30 * time.Second}
		c := newCache(t, refresh.Options{})
		r := req("lab", src)
		start := time.Now()
		mustGet(t, c, r)
		src.set(func(s *source) { s.delay = 2 * time.Second })
		time.Sleep(21 * time.Second)
		synctest.Wait()
		st, _ := c.Status(r.Source)
		if !st.NextRefresh.Equal(start.Add(20*time.Second)) || st.LastRefresh.After(start) {
			t.Fatalf("while renewing: next %s, last %s; want the due time shown until the renewal completes",
				st.NextRefresh.Sub(start), st.LastRefresh.Sub(start))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		st, _ = c.Status(r.Source)
		// Issued when the fetch started (+20 s), expiring 30 s after it
		// answered (+52 s): renewal at +20 + 2/3 of 32 s.
		if next := st.NextRefresh.Sub(start); !st.LastRefresh.Equal(start.Add(22*time.Second)) || next < 41*time.Second || next > 42*time.Second {
			t.Fatalf("after renewing: next %s, last %s", st.NextRefresh.Sub(start), st.LastRefresh.Sub(start))
		}
	})
}
