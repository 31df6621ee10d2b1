package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// SCIMExchange is one entry of an organization's provisioning log: a SCIM
// request its identity provider sent and gatehouse's answer. The store
// keeps what it is given; the caller (scim/provlog) has already redacted
// the secrets of Request and Response and cut them to its cap.
type SCIMExchange struct {
	Seq    int64     `db:"seq"`
	OrgID  string    `db:"org_id"`
	At     time.Time `db:"at"` // when the request arrived
	Method string    `db:"method"`
	Path   string    `db:"path"`
	// Filter is the request's SCIM filter (the query's, or a POST
	// .search body's), "" when it had none.
	Filter string `db:"filter"`
	Status int    `db:"status"`
	// SCIMType and Detail are the SCIM error's (RFC 7644 §3.12), "" on a
	// success.
	SCIMType string `db:"scim_type"`
	Detail   string `db:"detail"`
	// ResourceID, UserName and DisplayName name the User or Group the
	// request was about, when one can tell.
	ResourceID  string `db:"resource_id"`
	UserName    string `db:"user_name"`
	DisplayName string `db:"display_name"`
	// DurationMicros is how long gatehouse took to answer.
	DurationMicros int64 `db:"duration_us"`
	// TokenPrefix is the shown prefix of the SCIM token the request came
	// with (SCIMToken.Prefix), never the token.
	TokenPrefix string `db:"token_prefix"`
	// Request and Response are the bodies, redacted and capped; the
	// sizes are of the bodies as sent, the flags say they were cut.
	Request           string `db:"request"`
	RequestSize       int    `db:"request_size"`
	RequestTruncated  bool   `db:"request_truncated"`
	Response          string `db:"response"`
	ResponseSize      int    `db:"response_size"`
	ResponseTruncated bool   `db:"response_truncated"`
}

// SCIMLogQuery selects entries of one organization's provisioning log,
// newest first. Zero fields select everything.
type SCIMLogQuery struct {
	// Status selects one status (404); StatusClass a class (4 for 4xx).
	Status      int
	StatusClass int
	// UserName is compared exactly, as usernames are.
	UserName string
	Since    time.Time
	Until    time.Time // exclusive
	Before   int64     // continue below this Seq (the previous page's last); 0 starts at the newest
	Limit    int       // 1..1000; 0 means 100
}

const (
	scimLogInsertColumns = `org_id, at, method, path, filter, status, scim_type, detail, resource_id, user_name,
		display_name, duration_us, token_prefix, request, request_size, request_truncated, response, response_size,
		response_truncated`
	scimLogColumnCount = 19
	// scimLogBatchRows keeps a multi-row insert under SQLite's 32766
	// variables and PostgreSQL's 65535 parameters.
	scimLogBatchRows = 500
	// scimLogListColumns are what a page of the log reads: no bodies.
	scimLogListColumns = `seq, org_id, at, method, path, filter, status, scim_type, detail, resource_id, user_name,
		display_name, duration_us, token_prefix, request_size, request_truncated, response_size, response_truncated`
)

// AppendSCIMLog writes entries (Seq is given by the store) in one
// transaction of multi-row inserts.
func (s *SQL) AppendSCIMLog(ctx context.Context, entries []SCIMExchange) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, part := range chunks(entries, scimLogBatchRows) {
			args := make([]any, 0, len(part)*scimLogColumnCount)
			for _, e := range part {
				if e.OrgID == "" {
					return fmt.Errorf("store: a provisioning log entry without an organization")
				}
				args = append(args, e.OrgID, microTime(e.At), e.Method, e.Path, e.Filter, e.Status, e.SCIMType, e.Detail,
					e.ResourceID, e.UserName, e.DisplayName, e.DurationMicros, e.TokenPrefix, e.Request, e.RequestSize,
					e.RequestTruncated, e.Response, e.ResponseSize, e.ResponseTruncated)
			}
			if _, err := s.exec(ctx, tx, `INSERT INTO scim_log (`+scimLogInsertColumns+`) VALUES `+
				placeholders(len(part), scimLogColumnCount), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: provisioning log: %w", err)
	}
	return nil
}

// SCIMLog returns a page of org's provisioning log, newest first, without
// the bodies (SCIMLogEntry reads one entry whole).
func (s *SQL) SCIMLog(ctx context.Context, org string, q SCIMLogQuery) ([]SCIMExchange, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > 1000 {
		return nil, fmt.Errorf("%w: at most 1000 provisioning log entries a page", ErrInvalidQuery)
	}
	f := newLogFilter(org)
	switch {
	case q.Status > 0:
		f.add(`status = ?`, q.Status)
	case q.StatusClass > 0:
		f.add(`status >= ? AND status < ?`, q.StatusClass*100, q.StatusClass*100+100)
	}
	if q.UserName != "" {
		f.add(`user_name = ?`, q.UserName)
	}
	where, args := f.page(q.Since, q.Until, q.Before, q.Limit)
	out := []SCIMExchange{}
	err := s.selectAll(ctx, s.reader, &out, `SELECT `+scimLogListColumns+` FROM scim_log WHERE `+where+
		` ORDER BY seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: provisioning log: %w", err)
	}
	return out, nil
}

// SCIMLogEntry returns one entry of org's provisioning log with its
// bodies; ErrNotFound when org has none with that seq (pruned, or
// another organization's).
func (s *SQL) SCIMLogEntry(ctx context.Context, org string, seq int64) (SCIMExchange, error) {
	var e SCIMExchange
	err := s.get(ctx, s.reader, &e, `SELECT `+scimLogListColumns+`, request, response FROM scim_log
		WHERE org_id = ? AND seq = ?`, org, seq)
	return e, err
}

// PruneSCIMLog deletes org's entries older than its keep newest, at most
// limit of them (call again while it returns limit). Concurrent calls,
// from several instances, delete each entry once and leave keep.
func (s *SQL) PruneSCIMLog(ctx context.Context, org string, keep, limit int) (int64, error) {
	if keep < 1 || limit < 1 {
		return 0, fmt.Errorf("store: prune provisioning log: keep and limit must be positive")
	}
	var cutoff int64
	err := s.get(ctx, s.writer, &cutoff, `SELECT seq FROM scim_log WHERE org_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?`,
		org, keep-1)
	if errors.Is(err, ErrNotFound) {
		return 0, nil // keep or fewer
	}
	if err != nil {
		return 0, fmt.Errorf("store: prune provisioning log: %w", err)
	}
	n, err := s.exec(ctx, s.writer, `DELETE FROM scim_log WHERE seq IN
		(SELECT seq FROM scim_log WHERE org_id = ? AND seq < ? ORDER BY seq LIMIT ?)`, org, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("store: prune provisioning log: %w", err)
	}
	return n, nil
}

// PruneSCIMLogBefore deletes entries of every organization that arrived
// before before, at most limit of them (call again while it returns
// limit).
func (s *SQL) PruneSCIMLogBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit < 1 {
		return 0, fmt.Errorf("store: prune provisioning log: limit must be positive")
	}
	n, err := s.exec(ctx, s.writer, `DELETE FROM scim_log WHERE seq IN
		(SELECT seq FROM scim_log WHERE at < ? ORDER BY at LIMIT ?)`, before.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("store: prune provisioning log: %w", err)
	}
	return n, nil
}
