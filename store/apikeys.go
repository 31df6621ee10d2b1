package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// APIKey is a management-API credential of an organization: a request
// with it acts for the organization with Role. Only the SHA-256 of the
// secret is stored; Prefix is its first characters, shown in lists.
type APIKey struct {
	ID         string     `db:"id"`
	OrgID      string     `db:"org_id"`
	Name       string     `db:"name"`
	Prefix     string     `db:"prefix"`
	Hash       []byte     `db:"hash"`
	Role       Role       `db:"role"`
	CreatedBy  string     `db:"created_by"` // who created it, as the audit log names actors ("" for the operator)
	CreatedAt  time.Time  `db:"created_at"`
	ExpiresAt  *time.Time `db:"expires_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

// Usable reports whether the key may authenticate at time now.
func (k APIKey) Usable(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

const apiKeyColumns = `id, org_id, name, prefix, hash, role, created_by, created_at, expires_at, last_used_at, revoked_at`

// CreateAPIKey stores a key's hash.
func (s *SQL) CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error) {
	if k.OrgID == "" || len(k.Hash) == 0 || !k.Role.Valid() {
		return APIKey{}, errors.New("store: API key needs an organization, a hash and a role")
	}
	if k.ID == "" {
		k.ID = uuid.NewString()
	}
	k.CreatedAt = s.timestamp()
	k.ExpiresAt, k.LastUsedAt, k.RevokedAt = micro(k.ExpiresAt), micro(k.LastUsedAt), micro(k.RevokedAt)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.OrgID, k.Name, k.Prefix, k.Hash, string(k.Role), k.CreatedBy, k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt)
		if err != nil {
			return err
		}
		after := map[string]any{"name": k.Name, "prefix": k.Prefix, "role": string(k.Role)}
		if k.ExpiresAt != nil {
			after["expiresAt"] = k.ExpiresAt.Format(time.RFC3339Nano)
		}
		return s.audit(ctx, tx, k.OrgID, change{action: AuditAPIKeyCreate, targetKind: "api_key", targetID: k.ID, targetName: k.Name, after: after})
	})
	if err := s.createError(err, &ExistsError{Kind: "API key", Field: "prefix", Existing: k.Prefix}, "API key"); err != nil {
		return APIKey{}, err
	}
	return k, nil
}

// APIKeyByHash finds a key of any organization by the hash of its secret;
// revoked and expired keys are returned too (check Usable).
func (s *SQL) APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	var k APIKey
	err := s.get(ctx, s.reader, &k, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, hash)
	return k, err
}

// APIKeys lists an organization's keys, newest first, revoked ones included.
func (s *SQL) APIKeys(ctx context.Context, org string) ([]APIKey, error) {
	ks := []APIKey{}
	if err := s.selectAll(ctx, s.reader, &ks, `SELECT `+apiKeyColumns+` FROM api_keys WHERE org_id = ? ORDER BY created_at DESC, id`, org); err != nil {
		return nil, fmt.Errorf("store: list API keys: %w", err)
	}
	return ks, nil
}

// TouchAPIKey records that the key was used at the given time.
func (s *SQL) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	return s.touchSecret(ctx, "api_keys", id, at)
}

// RevokeAPIKey revokes a key of org; revoking twice keeps the first time.
func (s *SQL) RevokeAPIKey(ctx context.Context, org, id string, at time.Time) error {
	return s.revokeSecret(ctx, "api_keys", "name", AuditAPIKeyRevoke, "api_key", org, id, at)
}
