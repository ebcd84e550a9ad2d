// Package refresh keeps expiring credentials fresh for the daemon: a
// Cache holds each connector's credentials, renews them in the background
// at about two-thirds of their lifetime (with jitter, so that many
// connectors do not renew in step), retries a failed renewal with jittered
// exponential backoff that never sleeps past the point where the credential
// stops being usable, shares one fetch among concurrent gets
// (single-flight), and never hands out a credential within its skew
// tolerance of expiry.
//
// The policy is a set of pure functions of time (NextRefresh, RefreshTime,
// RetryDelay, Usable), after Vault's api/lifetime_watcher.go: the Cache
// only applies them, with an injected Clock and random source, so the
// schedule can be tested without waiting for it.
package refresh

import (
	"math"
	"time"
)

// Policy constants.
const (
	// RefreshFraction is where in a credential's lifetime it is renewed.
	// Two-thirds leaves a third of the lifetime for retries, as Vault does.
	RefreshFraction = 2.0 / 3.0
	// MaxJitter bounds the jitter, as a fraction of the lifetime, by which
	// a renewal comes early: renewals fall in [2/3-0.1, 2/3] of the
	// lifetime, so connectors configured together drift apart.
	MaxJitter = 0.1
	// RetryInitial is the first retry delay after a failed renewal, before
	// jitter; each further failure doubles it up to RetryMax.
	RetryInitial = time.Second
	// RetryMax caps the retry delay, before jitter.
	RetryMax = time.Minute
	// RetryRandomization spreads each retry delay over [1-r, 1+r] times
	// its nominal value (cenkalti/backoff's RandomizationFactor).
	RetryRandomization = 0.5
)

// NextRefresh returns when a credential issued at issued and expiring at
// expires is due for renewal: issued + 2/3·life − jitter·life, where
// jitter is a fraction of the lifetime (the Cache draws it from
// [0, MaxJitter)). A jitter outside [0, RefreshFraction] is clamped to it;
// a credential with no lifetime left is due at once (issued).
func NextRefresh(issued, expires time.Time, jitter float64) time.Time {
	life := expires.Sub(issued)
	if life <= 0 {
		return issued
	}
	jitter = min(max(jitter, 0), RefreshFraction)
	return issued.Add(time.Duration(math.Round(float64(life) * (RefreshFraction - jitter))))
}

// RefreshTime is NextRefresh for a credential that stops being usable
// skew before it expires: when the skew eats into the last third of the
// lifetime (a skew tolerance configured at a third of it or more), the
// schedule is taken over the usable part instead, so the renewal always
// comes before the credential stops being handed out.
func RefreshTime(issued, expires time.Time, skew time.Duration, jitter float64) time.Time {
	at := NextRefresh(issued, expires, jitter)
	if usableUntil := expires.Add(-skew); !at.Before(usableUntil) {
		at = NextRefresh(issued, usableUntil, jitter)
	}
	return at
}

// RetryDelay returns how long to wait before retry number attempt (1 for
// the first retry) of a failed renewal at now: RetryInitial·2^(attempt−1)
// capped at RetryMax, spread by ±RetryRandomization with rnd (a value in
// [0, 1); nil means no spread), and then capped so that the retry happens
// no later than expires−skew, the moment the current credential stops
// being usable. Once that moment has passed (or expires is zero: there is
// no current credential) the cap no longer applies: there is nothing left
// to save, and gets fetch for themselves.
//
// The backoff is a pure function of its arguments rather than
// cenkalti/backoff's ExponentialBackOff, which keeps its interval as
// state and draws from the global random source: here the attempt count
// lives with the credential and tests inject the randomness.
func RetryDelay(attempt int, now, expires time.Time, skew time.Duration, rnd func() float64) time.Duration {
	d := RetryInitial
	for i := 1; i < attempt && d < RetryMax; i++ {
		d *= 2
	}
	d = min(d, RetryMax)
	if rnd != nil {
		r := min(max(rnd(), 0), 1)
		d = time.Duration(float64(d) * (1 - RetryRandomization + 2*RetryRandomization*r))
	}
	if !expires.IsZero() {
		if left := expires.Add(-skew).Sub(now); left > 0 && d > left {
			d = left
		}
	}
	return max(d, 0)
}

// Usable reports whether a credential expiring at expires may still be
// handed out at now: it must be outside its skew tolerance, so that a
// client never starts a pull with a credential that dies on the way. A
// zero expires never expires.
func Usable(now, expires time.Time, skew time.Duration) bool {
	return expires.IsZero() || now.Before(expires.Add(-skew))
}
