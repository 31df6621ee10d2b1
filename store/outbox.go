package store

import (
	"context"
	"errors"
	"fmt"
	"time"

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
