package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// ErrLimit: a bound on stored records was reached (MaxSSORequestsInFlight).
var ErrLimit = errors.New("store: limit reached")

// MaxSSORequestsInFlight bounds a connection's unexpired sign-in
// requests. Anyone may start a sign-in, so this is what bounds the rows
// a flood from many addresses can add (with MaxSSORedirect, about
// 1 MB per connection); real sign-ins in flight are a few dozen.
const MaxSSORequestsInFlight = 1000

// MaxSSORedirect bounds SSORequest.RedirectTo, in bytes.
const MaxSSORedirect = 512

// windowCounter is the one fixed-window counter of the store, shared by
// every instance: SSO's per-address limits (HitRateWindow, in
// rate_windows) and sign-in and reset attempts (TakeSignInSlot,
// RequestReset, in login_throttle). The two tables differ only in the name
// of their count column and in what else uses them: login_throttle's
// counts are also given back (ReturnSignInSlot) and pruned with the
// sign-in records (Prune), rate_windows' by PruneRateWindows; their keys
// never meet.
type windowCounter struct{ hit, read string }

func newWindowCounter(table, count string) windowCounter {
	return windowCounter{
		hit: `INSERT INTO ` + table + ` (key, window_start, ` + count + `) VALUES (?, ?, 1)
			ON CONFLICT (key) DO UPDATE SET
				` + count + ` = CASE WHEN ` + table + `.window_start <= ? THEN 1 ELSE ` + table + `.` + count + ` + 1 END,
				window_start = CASE WHEN ` + table + `.window_start <= ? OR ` + table + `.` + count + ` + 1 = ? THEN excluded.window_start
					ELSE ` + table + `.window_start END
			RETURNING ` + count,
		read: `SELECT ` + count + ` FROM ` + table + ` WHERE key = ? AND window_start > ?`,
	}
}

var (
	rateWindows   = newWindowCounter("rate_windows", "hits")
	loginThrottle = newWindowCounter("login_throttle", "failures")
)

// add counts one for key in tx and returns the count of the window, this
// one included. A window lasts window from its first count: when it began
// at or before now-window a new one begins at now. When restartAt > 0 and
// the count reaches restartAt the window begins again at now (a lock that
// lasts window from the attempt that locked). The count is one atomic
// statement, so concurrent counts are all counted.
func (c windowCounter) add(ctx context.Context, s *SQL, tx *sqlx.Tx, key string, now time.Time, window time.Duration, restartAt int) (int, error) {
	now = microTime(now)
	start := now.Add(-window)
	var n int
	err := s.get(ctx, tx, &n, c.hit, key, now, start, start, restartAt)
	return n, err
}

// count returns the count of key's window current at now (0 when none),
// without counting one.
func (c windowCounter) count(ctx context.Context, s *SQL, key string, now time.Time, window time.Duration) (int, error) {
	var n int
	err := s.get(ctx, s.reader, &n, c.read, key, microTime(now).Add(-window))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return n, err
}

// HitRateWindow counts one hit for key in a fixed window (windowCounter)
// and returns the hits of the current window, this one included.
func (s *SQL) HitRateWindow(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	if window <= 0 || key == "" || len(key) > 512 {
		return 0, errors.New("store: a rate window needs a key of at most 512 bytes and a window")
	}
	var n int
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		n, err = rateWindows.add(ctx, s, tx, key, now, window, 0)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: rate window: %w", err)
	}
	return n, nil
}

// RateWindowHits returns the hits counted for key in the window current
// at now (0 when none), without counting one: a caller already over its
// limit need not write.
func (s *SQL) RateWindowHits(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	return rateWindows.count(ctx, s, key, now, window)
}

// PruneRateWindows deletes the windows that started before before.
func (s *SQL) PruneRateWindows(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.exec(ctx, s.writer, `DELETE FROM rate_windows WHERE window_start < ?`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("store: prune rate windows: %w", err)
	}
	return n, nil
}

// createSSORequest inserts r unless its connection already has
// MaxSSORequestsInFlight unexpired requests (ErrLimit). The
// connection's expired requests go in the same transaction, tests
// excepted (their results are read later; only Super Administrators
// start them), so that what a connection stores stays bounded whatever
// the housekeeping's pace.
func (s *SQL) createSSORequest(ctx context.Context, r SSORequest) error {
	if len(r.RedirectTo) > MaxSSORedirect {
		return fmt.Errorf("store: an SSO request's redirect is longer than %d bytes", MaxSSORedirect)
	}
	now := r.CreatedAt
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if s.d.name == "postgres" {
			// Concurrent starts on one connection take turns, so the
			// count below holds (on SQLite the writer already does).
			var id string
			if err := s.get(ctx, tx, &id, `SELECT id FROM sso_connections WHERE id = ? FOR UPDATE`, r.ConnectionID); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sso_requests WHERE connection_id = ? AND expires_at <= ? AND NOT test`,
			r.ConnectionID, now); err != nil {
			return err
		}
		var n int
		if err := s.get(ctx, tx, &n, `SELECT count(*) FROM sso_requests WHERE connection_id = ? AND expires_at > ?`,
			r.ConnectionID, now); err != nil {
			return err
		}
		if n >= MaxSSORequestsInFlight {
			return ErrLimit
		}
		_, err := s.exec(ctx, tx, `INSERT INTO sso_requests (`+ssoRequestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`,
			r.ID, r.ConnectionID, r.OrgID, r.Browser, r.Nonce, r.Verifier, r.RedirectTo, r.Test, r.CreatedAt, r.ExpiresAt)
		return err
	})
}
