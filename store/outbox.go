package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// OutboxMessage is an email waiting for (or done with) the SMTP server.
// Writes that send an email (an invitation, a password reset) queue it in
// their own transaction, so it is sent exactly when the change is durable
// and survives a restart. Body is sealed by the caller (it may carry a
// link with a secret) and cleared once the message is sent.
type OutboxMessage struct {
	Seq           int64      `db:"seq"`
	ID            string     `db:"id"`
	OrgID         string     `db:"org_id"`
	Recipient     string     `db:"recipient"`
	Subject       string     `db:"subject"`
	Body          string     `db:"body"`
	CreatedAt     time.Time  `db:"created_at"`
	Attempts      int        `db:"attempts"`
	NextAttemptAt time.Time  `db:"next_attempt_at"`
	ClaimedUntil  *time.Time `db:"claimed_until"`
	LastError     string     `db:"last_error"`
	SentAt        *time.Time `db:"sent_at"`
}

const outboxColumns = `seq, id, org_id, recipient, subject, body, created_at, attempts, next_attempt_at, claimed_until, last_error, sent_at`

// insertOutbox queues m inside tx, due now.
func (s *SQL) insertOutbox(ctx context.Context, tx *sqlx.Tx, m *OutboxMessage) error {
	if m.Recipient == "" || m.Body == "" {
		return errors.New("store: an email needs a recipient and a body")
	}
	if m.ID == "" {
		m.ID = uuid.NewString()
	}
	now := s.timestamp()
	m.CreatedAt, m.NextAttemptAt = now, now
	_, err := s.exec(ctx, tx, `INSERT INTO outbox (id, org_id, recipient, subject, body, created_at, attempts, next_attempt_at, last_error)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, '')`, m.ID, m.OrgID, m.Recipient, m.Subject, m.Body, m.CreatedAt, m.NextAttemptAt)
	if err != nil {
		return fmt.Errorf("store: queue email: %w", err)
	}
	return nil
}

// EnqueueEmail queues one email on its own.
func (s *SQL) EnqueueEmail(ctx context.Context, m OutboxMessage) (OutboxMessage, error) {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error { return s.insertOutbox(ctx, tx, &m) })
	return m, err
}

// Delivery from the outbox is at least once. A sender claims due messages
// for a lease (ClaimEmails), hands each to the SMTP server, then records the
// outcome (MarkEmailSent, MarkEmailFailed). While the lease runs no other
// claim returns the message, so several gatehouse instances on one database
// do not send it twice; a sender that dies after claiming loses nothing, as
// the message is claimable again once its lease ends. A sender that dies
// after the SMTP server accepted a message but before MarkEmailSent
// committed leaves it to be sent again: the recipient may see a duplicate,
// never a loss.

// maxLastError bounds the SMTP error text kept with a failed message.
const maxLastError = 500

// ClaimEmails claims up to limit messages that are due at now (not sent,
// next attempt not in the future, no lease running) for lease, oldest
// first, and returns them with ClaimedUntil set.
func (s *SQL) ClaimEmails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("store: claim emails: invalid limit %d or lease %v", limit, lease)
	}
	now = now.UTC().Truncate(time.Microsecond)
	until := now.Add(lease)
	// PostgreSQL: concurrent claimers skip the rows another one holds
	// instead of waiting for it, and re-check the condition on the latest
	// version of a row updated since their snapshot (READ COMMITTED), so a
	// row is claimed by one of them. SQLite: the writer connection's BEGIN
	// IMMEDIATE already excludes every other writer.
	lock := ""
	if s.d.name == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []OutboxMessage
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		return sqlx.SelectContext(ctx, tx, &out, s.q(`UPDATE outbox SET claimed_until = ? WHERE seq IN (
			SELECT seq FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
			ORDER BY seq LIMIT ?`+lock+`) RETURNING `+outboxColumns), until, now, now, limit)
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim emails: %w", err)
	}
	slices.SortFunc(out, func(a, b OutboxMessage) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// MarkEmailSent records that the SMTP server accepted the message: it is
// never claimed again, and its body (which may hold a secret link) is
// cleared. Marking a message already sent changes nothing; an unknown id is
// ErrNotFound.
func (s *SQL) MarkEmailSent(ctx context.Context, id string, at time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE outbox SET sent_at = ?, body = '', claimed_until = NULL, last_error = ''
			WHERE id = ? AND sent_at IS NULL`, at.UTC().Truncate(time.Microsecond), id)
		if err != nil {
			return fmt.Errorf("store: mark email sent: %w", err)
		}
		if n == 0 {
			return s.outboxExists(ctx, tx, id)
		}
		return nil
	})
}

// MarkEmailFailed records a failed attempt: one more attempt, errText (cut
// to about 500 bytes) as the last error, no lease, and the next attempt at
// next. A message already sent (by another sender whose claim followed an
// expired lease) is left as it is; an unknown id is ErrNotFound.
func (s *SQL) MarkEmailFailed(ctx context.Context, id, errText string, next time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_until = NULL
			WHERE id = ? AND sent_at IS NULL`, cleanError(errText), next.UTC().Truncate(time.Microsecond), id)
		if err != nil {
			return fmt.Errorf("store: mark email failed: %w", err)
		}
		if n == 0 {
			return s.outboxExists(ctx, tx, id)
		}
		return nil
	})
}

func (s *SQL) outboxExists(ctx context.Context, tx *sqlx.Tx, id string) error {
	var one int
	return s.get(ctx, tx, &one, `SELECT 1 FROM outbox WHERE id = ?`, id)
}

// cleanError makes error text storable in a text column of either database
// (valid UTF-8, no NUL) and cuts it to maxLastError bytes on a rune boundary.
func cleanError(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= maxLastError {
		return s
	}
	cut := maxLastError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// PendingEmails counts the messages not sent yet, claimed or not.
func (s *SQL) PendingEmails(ctx context.Context) (int, error) {
	var n int
	err := s.get(ctx, s.reader, &n, `SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL`)
	return n, err
}

// OutboxEmail reads one message of the outbox by id, as stored. It is not
// part of Store: no server path reads a message by id; tests (and
// storetest, which asks a backend for it) check what the outbox keeps.
func (s *SQL) OutboxEmail(ctx context.Context, id string) (OutboxMessage, error) {
	var m OutboxMessage
	err := s.get(ctx, s.reader, &m, `SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id)
	return m, err
}
