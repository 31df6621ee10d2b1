package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// S3Export is an organization's export of its audit log and login history
// to an S3 bucket (seed 000: "Configure S3 buckets to export data"): where
// to, how far each stream is, who exports it now, and how the last run
// went.
//
// The cursors say how far the bucket is complete: every entry of the
// stream with a seq at or below the cursor is in the bucket. They are
// advanced only after the objects holding those entries were written, by
// the holder of the lease (AdvanceS3Export); a new destination (endpoint,
// bucket or prefix) starts them again from 0.
type S3Export struct {
	OrgID       string `db:"org_id"`
	Enabled     bool   `db:"enabled"`
	Endpoint    string `db:"endpoint"` // https://s3.eu-west-1.amazonaws.com, http://127.0.0.1:7070
	Region      string `db:"region"`
	Bucket      string `db:"bucket"`
	Prefix      string `db:"prefix"` // "" or a key prefix without a leading or trailing "/"
	AccessKeyID string `db:"access_key_id"`
	// SecretAccessKey is sealed by the caller (package admin, context
	// "s3export:" + org id); the store never sees it in clear and never
	// writes it to the audit log.
	SecretAccessKey string `db:"secret_access_key"`
	PathStyle       bool   `db:"path_style"` // bucket in the path (MinIO, versitygw), not in the host name

	AuditCursor int64 `db:"audit_cursor"`
	LoginCursor int64 `db:"login_cursor"`

	LeaseToken    string     `db:"lease_token"` // "" when no instance holds the lease
	LeaseUntil    *time.Time `db:"lease_until"`
	NextRunAt     time.Time  `db:"next_run_at"`
	LastAttemptAt *time.Time `db:"last_attempt_at"`
	LastSuccessAt *time.Time `db:"last_success_at"`
	LastError     string     `db:"last_error"` // "" after a success
	LastErrorAt   *time.Time `db:"last_error_at"`
	Failures      int        `db:"failures"` // runs failed in a row

	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
	Version   int64     `db:"version"`
}

const s3ExportColumns = `org_id, enabled, endpoint, region, bucket, prefix, access_key_id, secret_access_key, path_style,
	audit_cursor, login_cursor, lease_token, lease_until, next_run_at, last_attempt_at, last_success_at, last_error,
	last_error_at, failures, created_at, updated_at, version`

// ExportStream is one of the two streams an S3Export copies.
type ExportStream string

// Streams of an S3Export; the names are part of the objects' keys.
const (
	ExportAudit  ExportStream = "audit"
	ExportLogins ExportStream = "login"
)

// Audit actions of the export's settings.
const (
	AuditS3ExportCreate = "s3_export.create"
	AuditS3ExportUpdate = "s3_export.update"
)

// s3ExportView is what the audit log shows of the settings: never the
// secret, only that it changed.
func s3ExportView(e *S3Export) map[string]any {
	if e == nil {
		return nil
	}
	return map[string]any{
		"enabled":     e.Enabled,
		"endpoint":    e.Endpoint,
		"region":      e.Region,
		"bucket":      e.Bucket,
		"prefix":      e.Prefix,
		"accessKeyId": e.AccessKeyID,
		"pathStyle":   e.PathStyle,
	}
}

// S3Export returns the organization's export; ErrNotFound when it has
// none.
func (s *SQL) S3Export(ctx context.Context, org string) (S3Export, error) {
	var e S3Export
	err := s.get(ctx, s.reader, &e, `SELECT `+s3ExportColumns+` FROM s3_exports WHERE org_id = ?`, org)
	return e, err
}

// PutS3Export creates or changes the organization's export settings: fn
// gets the current record (zero but for OrgID when there is none) and may
// change the destination, the credentials and Enabled; the rest is the
// store's. A new destination starts the cursors from 0. The change is
// audited without the secret, and the export is due at once.
func (s *SQL) PutS3Export(ctx context.Context, org string, fn func(*S3Export) error) (S3Export, error) {
	var out S3Export
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var before S3Export
		err := s.get(ctx, tx, &before, `SELECT `+s3ExportColumns+` FROM s3_exports WHERE org_id = ?`+s.d.forUpdate, org)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if !exists {
			if err := s.get(ctx, tx, new(int), `SELECT 1 FROM orgs WHERE id = ?`+s.d.forUpdate, org); err != nil {
				return err
			}
			before = S3Export{OrgID: org}
		}
		rec := before
		if err := fn(&rec); err != nil {
			return err
		}
		now := s.timestamp()
		// What fn may not change.
		rec.OrgID, rec.LeaseToken, rec.LeaseUntil = org, before.LeaseToken, before.LeaseUntil
		rec.AuditCursor, rec.LoginCursor = before.AuditCursor, before.LoginCursor
		rec.LastAttemptAt, rec.LastSuccessAt, rec.LastError, rec.LastErrorAt, rec.Failures =
			before.LastAttemptAt, before.LastSuccessAt, before.LastError, before.LastErrorAt, before.Failures
		if rec.Endpoint != before.Endpoint || rec.Bucket != before.Bucket || rec.Prefix != before.Prefix {
			rec.AuditCursor, rec.LoginCursor = 0, 0
		}
		rec.NextRunAt, rec.UpdatedAt = now, now
		view := s3ExportView(&rec)
		c := change{action: AuditS3ExportUpdate, targetKind: "s3_export", targetID: org, targetName: rec.Bucket, after: view}
		if exists {
			c.before = s3ExportView(&before)
			if rec.SecretAccessKey != before.SecretAccessKey {
				c.before["secretAccessKey"], c.after["secretAccessKey"] = "(previous)", "(changed)"
			}
			rec.Version = before.Version + 1
			_, err = s.exec(ctx, tx, `UPDATE s3_exports SET enabled = ?, endpoint = ?, region = ?, bucket = ?, prefix = ?,
				access_key_id = ?, secret_access_key = ?, path_style = ?, audit_cursor = ?, login_cursor = ?, next_run_at = ?,
				updated_at = ?, version = ? WHERE org_id = ?`, rec.Enabled, rec.Endpoint, rec.Region, rec.Bucket, rec.Prefix,
				rec.AccessKeyID, rec.SecretAccessKey, rec.PathStyle, rec.AuditCursor, rec.LoginCursor, rec.NextRunAt,
				rec.UpdatedAt, rec.Version, org)
		} else {
			c.action = AuditS3ExportCreate
			rec.CreatedAt, rec.Version = now, 1
			_, err = s.exec(ctx, tx, `INSERT INTO s3_exports (org_id, enabled, endpoint, region, bucket, prefix, access_key_id,
				secret_access_key, path_style, next_run_at, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				org, rec.Enabled, rec.Endpoint, rec.Region, rec.Bucket, rec.Prefix, rec.AccessKeyID, rec.SecretAccessKey,
				rec.PathStyle, rec.NextRunAt, rec.CreatedAt, rec.UpdatedAt, rec.Version)
		}
		if err != nil {
			return fmt.Errorf("store: s3 export: %w", err)
		}
		out = rec
		return s.audit(ctx, tx, org, c)
	})
	return out, err
}

// The lease. One instance at a time exports an organization: it claims the
// organization's export for a lease (ClaimS3Export), renews it while it
// works (RenewS3Export), advances the cursors only while it holds it
// (AdvanceS3Export), and gives it back with the run's outcome
// (ReleaseS3Export). An instance that dies holding it loses nothing: the
// export is claimable again once the lease ends, and the next run starts
// from the cursors, which only ever say what the bucket already holds.

// ClaimS3Export claims one enabled export that is due at now and not
// leased, the longest due first, until now+lease with a new token.
// ErrNotFound: none is.
func (s *SQL) ClaimS3Export(ctx context.Context, now time.Time, lease time.Duration) (S3Export, error) {
	if lease <= 0 {
		return S3Export{}, fmt.Errorf("store: claim s3 export: invalid lease %v", lease)
	}
	now = now.UTC().Truncate(time.Microsecond)
	// As ClaimEmails: PostgreSQL's claimers skip a row another one holds
	// and re-check it on its latest version; SQLite has one writer.
	lock := ""
	if s.d.name == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []S3Export
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		return sqlx.SelectContext(ctx, tx, &out, s.q(`UPDATE s3_exports SET lease_token = ?, lease_until = ?, last_attempt_at = ?
			WHERE org_id IN (SELECT org_id FROM s3_exports WHERE enabled AND next_run_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
			ORDER BY next_run_at LIMIT 1`+lock+`) RETURNING `+s3ExportColumns), uuid.NewString(), now.Add(lease), now, now, now)
	})
	if err != nil {
		return S3Export{}, fmt.Errorf("store: claim s3 export: %w", err)
	}
	if len(out) == 0 {
		return S3Export{}, ErrNotFound
	}
	return out[0], nil
}

// RenewS3Export extends the lease of token to now+lease. ErrConflict: the
// lease was lost (it ended and another instance claimed it, or the export
// was deleted).
func (s *SQL) RenewS3Export(ctx context.Context, org, token string, now time.Time, lease time.Duration) error {
	now = now.UTC().Truncate(time.Microsecond)
	return s.leased(ctx, `UPDATE s3_exports SET lease_until = ? WHERE org_id = ? AND lease_token = ? AND lease_until > ?`,
		now.Add(lease), org, token, now)
}

// AdvanceS3Export sets the cursor of stream (ExportAudit, ExportLogins) to
// seq, if the lease of token still runs at now; a cursor never moves back.
// ErrConflict: the lease was lost, and nothing is written.
func (s *SQL) AdvanceS3Export(ctx context.Context, org, token string, stream ExportStream, seq int64, now time.Time) error {
	col := map[ExportStream]string{ExportAudit: "audit_cursor", ExportLogins: "login_cursor"}[stream]
	if col == "" {
		return fmt.Errorf("store: no export stream %q", stream)
	}
	return s.leased(ctx, `UPDATE s3_exports SET `+col+` = CASE WHEN `+col+` < ? THEN ? ELSE `+col+` END
		WHERE org_id = ? AND lease_token = ? AND lease_until > ?`, seq, seq, org, token, now.UTC().Truncate(time.Microsecond))
}

// ReleaseS3Export ends the lease of token with the run's outcome: errText
// "" is a success (LastSuccessAt at now, no error, no failures), otherwise
// the error (cut to about 500 bytes) and one more failure. The export is
// due again at next. ErrConflict: the lease was lost meanwhile; the
// outcome is then not recorded (the new holder's will be).
func (s *SQL) ReleaseS3Export(ctx context.Context, org, token string, now, next time.Time, errText string) error {
	now = now.UTC().Truncate(time.Microsecond)
	next = next.UTC().Truncate(time.Microsecond)
	if errText == "" {
		return s.leased(ctx, `UPDATE s3_exports SET lease_token = '', lease_until = NULL, next_run_at = ?, last_success_at = ?,
			last_error = '', failures = 0 WHERE org_id = ? AND lease_token = ?`, next, now, org, token)
	}
	return s.leased(ctx, `UPDATE s3_exports SET lease_token = '', lease_until = NULL, next_run_at = ?, last_error = ?,
		last_error_at = ?, failures = failures + 1 WHERE org_id = ? AND lease_token = ?`, next, cleanError(errText), now, org, token)
}

// leased runs a write of the lease holder: no row changed is ErrConflict.
func (s *SQL) leased(ctx context.Context, query string, args ...any) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		n, err := s.exec(ctx, tx, query, args...)
		if err != nil {
			return fmt.Errorf("store: s3 export lease: %w", err)
		}
		if n == 0 {
			return ErrConflict
		}
		return nil
	})
}

// ExportedLogin is a row of the login history as the export writes it,
// with the administrator's username.
type ExportedLogin struct {
	LoginEvent
	UserName string `db:"username"`
}

// maxExportBatch bounds the entries ExportAuditAfter and ExportLoginsAfter
// return at once.
const maxExportBatch = 10000

// ExportAuditAfter returns up to limit entries of org's audit log with a
// seq above after, oldest first, and only entries that are settled: no
// entry with a smaller seq can still appear (see settledSeq). An entry
// missing from a page can therefore only be one that never will exist.
func (s *SQL) ExportAuditAfter(ctx context.Context, org string, after int64, limit int) ([]AuditEntry, error) {
	return exportAfter[AuditEntry](ctx, s, "audit_log", `SELECT seq, org_id, at, actor_kind, actor_id, actor_name, action,
		target_kind, target_id, target_name, before, after FROM audit_log
		WHERE org_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, org, after, limit)
}

// ExportLoginsAfter is ExportAuditAfter for the login history.
func (s *SQL) ExportLoginsAfter(ctx context.Context, org string, after int64, limit int) ([]ExportedLogin, error) {
	return exportAfter[ExportedLogin](ctx, s, "login_history", `SELECT h.seq, h.org_id, h.administrator_id, h.at, h.method, h.ip,
		h.user_agent, h.result, COALESCE(a.username, '') AS username FROM login_history h LEFT JOIN administrators a ON a.id = h.administrator_id
		WHERE h.org_id = ? AND h.seq > ? AND h.seq <= ? ORDER BY h.seq LIMIT ?`, org, after, limit)
}

// exportAfter runs query (org, after, the settled seq of table, limit).
func exportAfter[T any](ctx context.Context, s *SQL, table, query, org string, after int64, limit int) ([]T, error) {
	if limit <= 0 || limit > maxExportBatch {
		return nil, fmt.Errorf("store: export batch of %d entries (1..%d)", limit, maxExportBatch)
	}
	upTo, err := s.settledSeq(ctx, table)
	if err != nil {
		return nil, err
	}
	out := []T{}
	if err := s.selectAll(ctx, s.reader, &out, query, org, after, upTo, limit); err != nil {
		return nil, fmt.Errorf("store: export %s: %w", table, err)
	}
	return out, nil
}

// settleWait bounds how long settledSeq waits for transactions to end.
const settleWait = 5 * time.Second

// ErrUnsettled: a transaction of the database stayed open past settleWait,
// so the export cannot yet tell which entries exist; try again later.
var ErrUnsettled = errors.New("store: a database transaction older than 5 seconds is still open; the export waits for it")

// settledSeq returns a seq of table at or below which every row that will
// ever exist is visible now.
//
// On SQLite every visible row is settled: its one writer commits the
// transactions in the order they took their seq. On PostgreSQL seqs are
// taken when a row is inserted, not when it commits: a transaction that
// took seq 10 may commit after one that took seq 11, and a reader that
// exported 11 and moved its cursor past it would never see 10. So: read
// the largest visible seq B and the time t0 just after; every row below B
// took its seq before B's row committed, so in a transaction started
// before t0. Once no transaction started at or before t0 is open
// (pg_stat_activity, which shows every session of this database to its
// owner), each of those rows is committed or rolled back for good, and B
// is settled. The wait is as long as the longest write in progress:
// milliseconds; past settleWait it is ErrUnsettled.
func (s *SQL) settledSeq(ctx context.Context, table string) (int64, error) {
	var top struct {
		Seq int64     `db:"seq"`
		At  time.Time `db:"at"`
	}
	if s.d.name != "postgres" {
		return 1<<63 - 1, nil
	}
	if err := s.get(ctx, s.reader, &top, `SELECT COALESCE(MAX(seq), 0) AS seq, clock_timestamp() AS at FROM `+table); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(settleWait)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var open int
		if err := s.get(ctx, s.reader, &open, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()
			AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start <= ?`, top.At); err != nil {
			return 0, err
		}
		if open == 0 {
			return top.Seq, nil
		}
		if time.Now().After(deadline) {
			return 0, ErrUnsettled
		}
		select {
		case <-ctx.Done():
			return 0, unavailable(ctx.Err())
		case <-time.After(wait):
		}
	}
}
