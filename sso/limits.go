package sso

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"gatehouse/admin/web"
	"gatehouse/store"
)

// Limits bound what browsers that have not signed in can make gatehouse
// do and write: sign-ins started (GET /sso/start, POST /login for an
// organization with SSO) and answers posted (ACS, OIDC callback) per
// client address, and the audit entries of refused sign-ins per address
// and per connection. The windows live in the database, shared by every
// instance. Zero fields take the defaults.
type Limits struct {
	Window time.Duration // 10 minutes
	// StartsPerAddress and AnswersPerAddress: 60 each per window. A
	// sign-in takes one of each; an office behind one address has room.
	StartsPerAddress, AnswersPerAddress int
	// Refused sign-ins audited per window: 10 per connection and
	// address, 100 per connection. The first one over a limit is
	// recorded as such; later ones go to the log only.
	AuditsPerAddress, AuditsPerConnection int
}

func (l Limits) window() time.Duration    { return or(l.Window, 10*time.Minute) }
func (l Limits) starts() int              { return or(l.StartsPerAddress, 60) }
func (l Limits) answers() int             { return or(l.AnswersPerAddress, 60) }
func (l Limits) auditsPerAddress() int    { return or(l.AuditsPerAddress, 10) }
func (l Limits) auditsPerConnection() int { return or(l.AuditsPerConnection, 100) }

func or[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// addressKey is the unit a client address is counted in: the address
// for IPv4, its /64 for IPv6 (one subscriber's allocation).
func addressKey(ip string) string {
	a := net.ParseIP(ip)
	if a == nil {
		return ip
	}
	if a.To4() == nil {
		return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return a.String()
}

// RateWindows are the windows of Limits, counted in the database so that
// every instance shares them: HitRateWindow counts a hit and returns the
// window's hits, RateWindowHits reads them without counting.
type RateWindows interface {
	HitRateWindow(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
	RateWindowHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
}

// hit counts one event for key against limit and reports whether it is
// within it, and the hits counted (0 when it did not count: once over
// the limit it writes nothing more, the window is only read). A database error lets the event through: what follows needs
// the database too, and fails on its own.
func (f *Flow) hit(ctx context.Context, key string, limit int) (within bool, hits int) {
	now, window := f.now(), f.Limits.window()
	if n, err := f.Store.RateWindowHits(ctx, key, now, window); err == nil && n > limit {
		return false, 0
	}
	n, err := f.Store.HitRateWindow(ctx, key, now, window)
	if err != nil {
		return true, 0
	}
	return n <= limit, n
}

// allowAddress counts a start or an answer of the request's client
// address, and answers 429 when it is over the limit.
func (f *Flow) allowAddress(w http.ResponseWriter, r *http.Request, what string, limit int) bool {
	key := "sso-" + what + ":" + addressKey(web.ClientIP(r, f.TrustForwardedFor))
	ok, n := f.hit(r.Context(), key, limit)
	if ok {
		return true
	}
	if n == limit+1 { // once per window, not per request of a flood
		f.logger(r).Info("sso: too many sign-ins from one address", "what", what, "limit", limit, "window", f.Limits.window())
	}
	f.tooMany(w, r, f.Limits.window(), "Too many sign-ins from your network. Try again in a few minutes.")
	return false
}

// tooMany is the 429 page, with Retry-After.
func (f *Flow) tooMany(w http.ResponseWriter, r *http.Request, retry time.Duration, message string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
	f.message(w, r, http.StatusTooManyRequests, pageData{Message: message})
}

// auditRefusal reports whether a refused sign-in on conn from the
// request's address is audited, and whether as the first one over a
// limit (the entry then says that more are not recorded).
func (f *Flow) auditRefusal(r *http.Request, conn store.SSOConnection) (record, last bool) {
	ctx := r.Context()
	addr := addressKey(web.ClientIP(r, f.TrustForwardedFor))
	ok, n := f.hit(ctx, "sso-audit:"+conn.ID+":"+addr, f.Limits.auditsPerAddress())
	if !ok {
		return n == f.Limits.auditsPerAddress()+1, true
	}
	ok, n = f.hit(ctx, "sso-audit:"+conn.ID, f.Limits.auditsPerConnection())
	if !ok {
		return n == f.Limits.auditsPerConnection()+1, true
	}
	return true, false
}
