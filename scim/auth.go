package scim

import (
	"context"
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"gatehouse/admin"
	"gatehouse/store"
)

// touchEvery throttles the token's last-used write: once a minute is
// precise enough for "last used" and keeps a write off every request.
const touchEvery = time.Minute

var (
	errNoToken = &Error{Status: http.StatusUnauthorized,
		Detail: "authentication required: send the organization's SCIM token as Authorization: Bearer <token>"}
	errBadToken = &Error{Status: http.StatusUnauthorized,
		Detail: "the bearer token is not valid: unknown, revoked or expired"}
	errSCIMOff = &Error{Status: http.StatusForbidden,
		Detail: "SCIM provisioning is turned off for this organization; a super administrator must turn it on before the identity provider can provision"}
)

// authenticate finds the organization of the request's bearer token. The
// token is looked up by the SHA-256 of its text, so the stored form is
// useless to a thief; the lookup result is then compared with the hash in
// constant time. Several tokens of one organization are valid at once, so
// a new one can be rolled out before the old one is revoked.
func (s *Server) authenticate(r *http.Request) (*tokenEntry, error) {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, errNoToken
	}
	hash := admin.HashSecret(strings.TrimSpace(secret))
	now := s.cfg.Now()
	e, ok := s.tokens.get(hash, now)
	if !ok {
		t, err := s.store.SCIMTokenByHash(r.Context(), hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errBadToken
		}
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(t.Hash, hash) != 1 {
			return nil, errBadToken
		}
		org, err := s.store.Org(r.Context(), t.OrgID)
		if err != nil {
			return nil, err
		}
		e = &tokenEntry{token: t, org: org, cached: now}
		if t.LastUsedAt != nil {
			e.touched = *t.LastUsedAt
		}
		s.tokens.put(hash, e)
	}
	// A token that names its organization but may not be used: the
	// entry goes back with the refusal, for the provisioning log.
	if !e.token.Usable(now) {
		return e, errBadToken
	}
	if !e.org.SCIMEnabled {
		return e, errSCIMOff
	}
	if e.touchDue(now) {
		if err := s.store.TouchSCIMToken(r.Context(), e.token.ID, now); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// tokenCache remembers verified tokens for a short time so that a busy IdP
// costs no database read per request for authentication.
type tokenCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*tokenEntry
}

type tokenEntry struct {
	token   store.SCIMToken
	org     store.Org
	cached  time.Time
	mu      sync.Mutex
	touched time.Time
	// registered is the organization's registered email domains, read
	// when a write first needs them; nil until then.
	registered []string
}

// domains returns the organization's registered email domains, read once
// per entry: like the SCIM switch, a change takes effect within the
// cache's lifetime.
func (e *tokenEntry) domains(ctx context.Context, st OrgStore) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.registered != nil {
		return e.registered, nil
	}
	ds, err := st.RegisteredDomains(ctx, e.org.ID)
	if err != nil {
		return nil, err
	}
	e.registered = make([]string, len(ds))
	for i, d := range ds {
		e.registered[i] = d.Domain
	}
	return e.registered, nil
}

// touchDue reports whether the last-used time should be written now, and
// if so claims the write for this request.
func (e *tokenEntry) touchDue(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.touched) < touchEvery {
		return false
	}
	e.touched = now
	return true
}

const maxCachedTokens = 10000

func newTokenCache(ttl time.Duration) *tokenCache {
	return &tokenCache{ttl: ttl, m: map[string]*tokenEntry{}}
}

func (c *tokenCache) get(hash []byte, now time.Time) (*tokenEntry, bool) {
	if c.ttl < 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[string(hash)]
	if !ok || now.Sub(e.cached) >= c.ttl || now.Before(e.cached) {
		return nil, false
	}
	return e, true
}

func (c *tokenCache) put(hash []byte, e *tokenEntry) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedTokens {
		clear(c.m) // only verified tokens get here; refilling is cheap
	}
	c.m[string(hash)] = e
}

// limiter is a token bucket per organization (golang.org/x/time/rate):
// rate requests per second sustained, bursts of twice that. It is per
// instance: with N instances an organization may make N times the rate.
type limiter struct {
	perSecond float64 // < 0: no limit
	burst     int
	now       func() time.Time
	m         sync.Map // organization id -> *rate.Limiter
}

func newLimiter(perSecond float64, now func() time.Time) *limiter {
	// A bucket holds whole requests: twice the rate, rounded up, and at
	// least one so that a rate under 0.5/s still lets a request through.
	return &limiter{perSecond: perSecond, burst: max(1, int(math.Ceil(2*perSecond))), now: now}
}

// allow takes one token from org's bucket, or returns a 429 whose
// Retry-After (an integer, which Okta honours) is when one will be there.
func (l *limiter) allow(org string) error {
	if l.perSecond < 0 {
		return nil
	}
	now := l.now()
	b, ok := l.m.Load(org)
	if !ok {
		b, _ = l.m.LoadOrStore(org, rate.NewLimiter(rate.Limit(l.perSecond), l.burst))
	}
	lim := b.(*rate.Limiter)
	if lim.AllowN(now, 1) {
		return nil
	}
	// A refused AllowN takes nothing, so TokensAt is what the bucket holds.
	wait := int(math.Ceil((1 - lim.TokensAt(now)) / l.perSecond))
	return &Error{Status: http.StatusTooManyRequests, RetryAfter: max(wait, 1),
		Detail: "too many requests for this organization; retry after the number of seconds in Retry-After"}
}
