package refresh_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/connectord/connectord/refresh"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestNextRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		expires time.Time
		jitter  float64
		want    time.Time
	}{
		{"two thirds", at(30 * time.Second), 0, at(20 * time.Second)},
		{"max jitter comes early", at(30 * time.Second), refresh.MaxJitter, at(17 * time.Second)},
		{"hour", at(time.Hour), 0.05, at(37 * time.Minute)},
		{"negative jitter clamped", at(30 * time.Second), -1, at(20 * time.Second)},
		{"huge jitter clamped to now", at(30 * time.Second), 5, t0},
		{"no lifetime", t0, 0, t0},
		{"expired before issue", at(-time.Second), 0, t0},
	}
	for _, tc := range tests {
		if got := refresh.NextRefresh(t0, tc.expires, tc.jitter); !got.Equal(tc.want) {
			t.Errorf("%s: NextRefresh = +%s, want +%s", tc.name, got.Sub(t0), tc.want.Sub(t0))
		}
	}
}

// Jitter drawn from [0, MaxJitter) keeps every renewal within
// [2/3-0.1, 2/3] of the lifetime, never after it.
func TestNextRefreshJitterBounds(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		life := time.Duration(1+r.Int64N(int64(24*time.Hour))) * time.Nanosecond
		got := refresh.NextRefresh(t0, t0.Add(life), r.Float64()*refresh.MaxJitter).Sub(t0)
		lo := time.Duration(float64(life) * (refresh.RefreshFraction - refresh.MaxJitter))
		hi := time.Duration(float64(life) * refresh.RefreshFraction)
		if got < lo-1 || got > hi+1 {
			t.Fatalf("life %s: renewal at +%s outside [%s, %s]", life, got, lo, hi)
		}
	}
}

func TestRefreshTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		life time.Duration
		skew time.Duration
		want time.Duration
	}{
		{"default skew leaves two thirds", 60 * time.Second, 15 * time.Second, 40 * time.Second},
		{"skew of a third exactly", 60 * time.Second, 20 * time.Second, 26*time.Second + 666666667},
		{"skew eats the last third: schedule over the usable part", 60 * time.Second, 30 * time.Second, 20 * time.Second},
		{"no skew", 30 * time.Second, 0, 20 * time.Second},
	}
	for _, tc := range tests {
		got := refresh.RefreshTime(t0, t0.Add(tc.life), tc.skew, 0).Sub(t0)
		if got != tc.want {
			t.Errorf("%s: RefreshTime = +%s, want +%s", tc.name, got, tc.want)
		}
		if !refresh.Usable(t0.Add(got), t0.Add(tc.life), tc.skew) {
			t.Errorf("%s: renewal at +%s comes after the credential stopped being usable", tc.name, got)
		}
	}
}

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	const skew = 5 * time.Second
	tests := []struct {
		name    string
		attempt int
		now     time.Time
		expires time.Time
		rnd     func() float64
		want    time.Duration
	}{
		{"first", 1, t0, time.Time{}, nil, time.Second},
		{"attempt zero is the first", 0, t0, time.Time{}, nil, time.Second},
		{"doubles", 3, t0, time.Time{}, nil, 4 * time.Second},
		{"capped at RetryMax", 7, t0, time.Time{}, nil, time.Minute},
		{"huge attempt", 1 << 30, t0, time.Time{}, nil, time.Minute},
		{"jitter low end", 2, t0, time.Time{}, fixed(0), time.Second},
		{"jitter middle", 2, t0, time.Time{}, fixed(0.5), 2 * time.Second},
		{"jitter high end", 2, t0, time.Time{}, fixed(1), 3 * time.Second},
		{"capped at expiry minus skew", 4, t0, at(10 * time.Second), nil, 5 * time.Second},
		{"below the cap", 2, t0, at(10 * time.Second), nil, 2 * time.Second},
		{"past the usable end: uncapped", 4, at(7 * time.Second), at(10 * time.Second), nil, 8 * time.Second},
		{"past expiry: uncapped", 4, at(20 * time.Second), at(10 * time.Second), nil, 8 * time.Second},
	}
	for _, tc := range tests {
		if got := refresh.RetryDelay(tc.attempt, tc.now, tc.expires, skew, tc.rnd); got != tc.want {
			t.Errorf("%s: RetryDelay = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// Whatever the attempt and the randomness, a retry while the credential is
// usable happens no later than expiry minus skew, and a delay is never
// negative.
func TestRetryDelayNeverPastExpiry(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		attempt := 1 + r.IntN(20)
		expires := at(time.Duration(r.Int64N(int64(2 * time.Hour))))
		skew := time.Duration(r.Int64N(int64(10 * time.Minute)))
		now := at(time.Duration(r.Int64N(int64(2 * time.Hour))))
		d := refresh.RetryDelay(attempt, now, expires, skew, r.Float64)
		if d < 0 || d > time.Duration(float64(refresh.RetryMax)*(1+refresh.RetryRandomization)) {
			t.Fatalf("RetryDelay(%d) = %s", attempt, d)
		}
		if deadline := expires.Add(-skew); now.Before(deadline) && now.Add(d).After(deadline) {
			t.Fatalf("attempt %d at +%s: retry at +%s is after the usable end +%s", attempt, now.Sub(t0), now.Add(d).Sub(t0), deadline.Sub(t0))
		}
	}
}

func TestUsable(t *testing.T) {
	t.Parallel()
	exp := at(time.Minute)
	tests := []struct {
		name string
		now  time.Time
		exp  time.Time
		want bool
	}{
		{"well before", t0, exp, true},
		{"just outside the skew", at(44 * time.Second), exp, true},
		{"at the skew boundary", at(45 * time.Second), exp, false},
		{"inside the skew", at(50 * time.Second), exp, false},
		{"after expiry", at(2 * time.Minute), exp, false},
		{"never expires", at(100 * time.Hour), time.Time{}, true},
	}
	for _, tc := range tests {
		if got := refresh.Usable(tc.now, tc.exp, 15*time.Second); got != tc.want {
			t.Errorf("%s: Usable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
