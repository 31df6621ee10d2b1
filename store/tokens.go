package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const scimTokenColumns = `id, org_id, prefix, hash, description, created_at, expires_at, last_used_at, revoked_at`

// CreateSCIMToken stores a token's hash. The secret itself never reaches
// the store.
func (s *SQL) CreateSCIMToken(ctx context.Context, t SCIMToken) (SCIMToken, error) {
	if t.OrgID == "" || len(t.Hash) == 0 {
		return SCIMToken{}, errors.New("store: SCIM token needs an organization and a hash")
	}
	if t.ID == "" {
		t.ID = uuid.NewString()
	}
	t.CreatedAt = s.timestamp()
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = micro(t.ExpiresAt), micro(t.LastUsedAt), micro(t.RevokedAt)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO scim_tokens (`+scimTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.OrgID, t.Prefix, t.Hash, t.Description, t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt)
		if err != nil {
			return err
		}
		after := map[string]any{"prefix": t.Prefix, "description": t.Description}
		if t.ExpiresAt != nil {
			after["expiresAt"] = t.ExpiresAt.Format(time.RFC3339Nano)
		}
		return s.audit(ctx, tx, t.OrgID, change{action: AuditSCIMTokenCreate, targetKind: "scim_token", targetID: t.ID,
			targetName: t.Prefix, after: after})
	})
	if err := s.createError(err, &ExistsError{Kind: "SCIM token", Field: "prefix", Existing: t.Prefix}, "SCIM token"); err != nil {
		return SCIMToken{}, err
	}
	return t, nil
}

// micro is a time as the store keeps it: UTC, microseconds.
func micro(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// SCIMTokenByHash finds a token by the hash of its secret.
func (s *SQL) SCIMTokenByHash(ctx context.Context, hash []byte) (SCIMToken, error) {
	var t SCIMToken
	err := s.get(ctx, s.reader, &t, `SELECT `+scimTokenColumns+` FROM scim_tokens WHERE hash = ?`, hash)
	return t, err
}

// SCIMTokens lists an organization's tokens, newest first, revoked ones
// included.
func (s *SQL) SCIMTokens(ctx context.Context, org string) ([]SCIMToken, error) {
	ts := []SCIMToken{}
	err := s.selectAll(ctx, s.reader, &ts, `SELECT `+scimTokenColumns+` FROM scim_tokens WHERE org_id = ? ORDER BY created_at DESC, id`, org)
	if err != nil {
		return nil, fmt.Errorf("store: list SCIM tokens: %w", err)
	}
	return ts, nil
}

// TouchSCIMToken records that the token was used at the given time.
func (s *SQL) TouchSCIMToken(ctx context.Context, id string, at time.Time) error {
	return s.touchSecret(ctx, "scim_tokens", id, at)
}

// RevokeSCIMToken revokes a token of org; revoking twice keeps the first
// time.
func (s *SQL) RevokeSCIMToken(ctx context.Context, org, id string, at time.Time) error {
	return s.revokeSecret(ctx, "scim_tokens", "prefix", AuditSCIMTokenRevoke, "scim_token", org, id, at)
}

// touchSecret records the last use of a bearer secret (a SCIM token or an
// API key: table).
func (s *SQL) touchSecret(ctx context.Context, table, id string, at time.Time) error {
	n, err := s.exec(ctx, s.writer, `UPDATE `+table+` SET last_used_at = ? WHERE id = ?`, at.UTC().Truncate(time.Microsecond), id)
	if err != nil {
		return fmt.Errorf("store: touch %s: %w", table, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// revokeSecret revokes a bearer secret of org once, auditing it as action
// on a target of kind named by the row's nameColumn.
func (s *SQL) revokeSecret(ctx context.Context, table, nameColumn, action, kind, org, id string, at time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			Name      string     `db:"name"`
			RevokedAt *time.Time `db:"revoked_at"`
		}
		if err := s.get(ctx, tx, &row, `SELECT `+nameColumn+` AS name, revoked_at FROM `+table+` WHERE id = ? AND org_id = ?`+s.d.forUpdate,
			id, org); err != nil {
			return err
		}
		if row.RevokedAt != nil {
			return nil
		}
		if _, err := s.exec(ctx, tx, `UPDATE `+table+` SET revoked_at = ? WHERE id = ?`, at.UTC().Truncate(time.Microsecond), id); err != nil {
			return fmt.Errorf("store: revoke %s: %w", table, err)
		}
		return s.audit(ctx, tx, org, change{action: action, targetKind: kind, targetID: id, targetName: row.Name,
			before: map[string]any{"revoked": false}, after: map[string]any{"revoked": true}})
	})
}

// insertInvitation writes inv for the administrator named username.
func (s *SQL) insertInvitation(ctx context.Context, tx *sqlx.Tx, inv Invitation, username string, now time.Time) error {
	if len(inv.Hash) == 0 || inv.ExpiresAt.IsZero() {
		return errors.New("store: invitation needs a hash and an expiry")
	}
	if inv.Purpose == "" {
		inv.Purpose = PurposeActivation
	}
	if inv.Purpose != PurposeActivation && inv.Purpose != PurposePasswordReset {
		return fmt.Errorf("store: invalid invitation purpose %q", inv.Purpose)
	}
	inv.CreatedAt = now
	exp := inv.ExpiresAt.UTC().Truncate(time.Microsecond)
	_, err := s.exec(ctx, tx, `INSERT INTO invitations (hash, org_id, administrator_id, purpose, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, inv.Hash, inv.OrgID, inv.AdministratorID, inv.Purpose, inv.CreatedAt, exp, inv.UsedAt)
	if err := s.createError(err, &ExistsError{Kind: "invitation", Field: "hash", Existing: "(secret)"}, "invitation"); err != nil {
		return err
	}
	return s.audit(ctx, tx, inv.OrgID, change{action: AuditInvitationCreate, targetKind: "administrator", targetID: inv.AdministratorID,
		targetName: username, after: map[string]any{"purpose": inv.Purpose, "expiresAt": exp.Format(time.RFC3339Nano)}})
}

// CreateInvitation stores an invitation for an existing administrator and,
// when email is not nil, queues it in the same transaction. Earlier unused
// invitations of the administrator with the same purpose stop working: the
// newest link is the only one.
func (s *SQL) CreateInvitation(ctx context.Context, inv Invitation, email *OutboxMessage) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.createInvitation(ctx, tx, inv, email) })
}

func (s *SQL) createInvitation(ctx context.Context, tx *sqlx.Tx, inv Invitation, email *OutboxMessage) error {
	var username string
	if err := s.get(ctx, tx, &username, `SELECT username FROM administrators WHERE id = ? AND org_id = ?`, inv.AdministratorID, inv.OrgID); err != nil {
		return err
	}
	if inv.Purpose == "" {
		inv.Purpose = PurposeActivation
	}
	now := s.timestamp()
	if _, err := s.exec(ctx, tx, `UPDATE invitations SET used_at = ? WHERE administrator_id = ? AND purpose = ? AND used_at IS NULL`,
		now, inv.AdministratorID, inv.Purpose); err != nil {
		return fmt.Errorf("store: create invitation: %w", err)
	}
	if err := s.insertInvitation(ctx, tx, inv, username, now); err != nil {
		return err
	}
	if email != nil {
		return s.insertOutbox(ctx, tx, email)
	}
	return nil
}

// ResetRequest is one request for a password-reset link (RequestReset).
type ResetRequest struct {
	// Key is counted in a fixed window of Window from At; at most Limit
	// requests of one key in a window create a link.
	Key    string
	At     time.Time
	Window time.Duration
	Limit  int
	// Invitation and Email, when the request names an administrator who
	// may have a link, are created as CreateInvitation does while the
	// key is within its limit; nil for a name without one.
	Invitation *Invitation
	Email      *OutboxMessage
}

// RequestReset counts a password-reset request and creates its link, in
// one transaction: a request for a name without an account writes the
// same throttle row in one transaction too, so the two take the same
// time. It reports whether a link was created.
func (s *SQL) RequestReset(ctx context.Context, r ResetRequest) (bool, error) {
	if r.Key == "" || r.At.IsZero() || r.Window <= 0 || r.Limit <= 0 {
		return false, errors.New("store: a reset request needs a key, a time, a window and a limit")
	}
	created := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		n, err := s.countAttempt(ctx, tx, r.Key, r.At, r.Window, 0)
		if err != nil || n > r.Limit || r.Invitation == nil {
			return err
		}
		created = true
		return s.createInvitation(ctx, tx, *r.Invitation, r.Email)
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// InvitationByHash finds an invitation by the hash of its secret.
func (s *SQL) InvitationByHash(ctx context.Context, hash []byte) (Invitation, error) {
	var inv Invitation
	err := s.get(ctx, s.reader, &inv, `SELECT hash, org_id, administrator_id, purpose, created_at, expires_at, used_at
		FROM invitations WHERE hash = ?`, hash)
	return inv, err
}

// OpenInvitation reports whether the administrator has an unused
// invitation of the purpose (expired ones included): for activation, that
// the account was never finished.
func (s *SQL) OpenInvitation(ctx context.Context, org, administratorID, purpose string) (bool, error) {
	var n int
	err := s.get(ctx, s.reader, &n, `SELECT count(*) FROM invitations WHERE org_id = ? AND administrator_id = ? AND purpose = ? AND used_at IS NULL`,
		org, administratorID, purpose)
	return n > 0, err
}
