package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/store"
)

// SCIMTokenPrefix starts every SCIM token, so that secret scanners and
// people can recognise one.
const SCIMTokenPrefix = "gh_scim_"

// scimTokenShownPrefix is how many characters of a token are stored in
// clear (store.SCIMToken.Prefix) to tell tokens apart in lists: the fixed
// prefix and 8 random characters (48 of the 256 random bits).
const scimTokenShownPrefix = 16

// SCIMTokens issues the bearer tokens identity providers use on an
// organization's SCIM endpoint.
type SCIMTokens struct {
	Store store.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Create issues a token for the organization and returns its secret, which
// is not stored and cannot be shown again. A ttl of zero means the token
// does not expire.
func (s *SCIMTokens) Create(ctx context.Context, orgID, description string, ttl time.Duration) (string, store.SCIMToken, error) {
	if ttl < 0 {
		return "", store.SCIMToken{}, refuse(CodeInvalidExpiry, "token lifetime %s is negative", ttl)
	}
	if description != "" {
		if err := checkText(description, maxNameLen, CodeInvalidDescription, "token description"); err != nil {
			return "", store.SCIMToken{}, err
		}
	}
	secret := SCIMTokenPrefix + newSecret()
	t := store.SCIMToken{
		OrgID:       orgID,
		Prefix:      secret[:scimTokenShownPrefix],
		Hash:        HashSecret(secret),
		Description: description,
	}
	if ttl > 0 {
		// Microseconds, as the store keeps them, so the returned record
		// equals what a later read gives.
		exp := now(s.Now).Add(ttl).UTC().Truncate(time.Microsecond)
		t.ExpiresAt = &exp
	}
	t, err := s.Store.CreateSCIMToken(ctx, t)
	if errors.Is(err, store.ErrNotFound) {
		return "", store.SCIMToken{}, &Error{Code: CodeOrgNotFound, Message: fmt.Sprintf("organization with id %q not found", orgID), Err: err}
	}
	if err != nil {
		return "", store.SCIMToken{}, fmt.Errorf("admin: create SCIM token: %w", err)
	}
	return secret, t, nil
}

// Management requests (the management API and the console) go through
// the methods below, which hold the rule that only a Super Administrator
// manages SCIM tokens; Create is the operator's (gatehouse scim token
// create).

func superForTokens(p Principal) error {
	if !p.Super() {
		return refuse(CodeForbidden, "only a Super Administrator may manage SCIM tokens")
	}
	return nil
}

// Issue is Create for a management request, audited as p's.
func (s *SCIMTokens) Issue(ctx context.Context, p Principal, description string, ttl time.Duration) (string, store.SCIMToken, error) {
	if err := superForTokens(p); err != nil {
		return "", store.SCIMToken{}, err
	}
	return s.Create(p.Context(ctx), p.OrgID, description, ttl)
}

// List returns the organization's tokens, revoked ones included.
func (s *SCIMTokens) List(ctx context.Context, p Principal) ([]store.SCIMToken, error) {
	if err := superForTokens(p); err != nil {
		return nil, err
	}
	return s.Store.SCIMTokens(ctx, p.OrgID)
}

// Revoke revokes a token of the organization; revoking a revoked token
// changes nothing.
func (s *SCIMTokens) Revoke(ctx context.Context, p Principal, id string) error {
	if err := superForTokens(p); err != nil {
		return err
	}
	err := s.Store.RevokeSCIMToken(p.Context(ctx), p.OrgID, id, now(s.Now))
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("SCIM token %q not found", id), Err: err}
	}
	return err
}

// MaxLifetimeDays bounds the lifetime, in days, of an API key or a SCIM
// token made by a management request.
const MaxLifetimeDays = 3650

// LifetimeDays is a lifetime of days for an API key or a SCIM token made
// by a management request: 0 means none, 1 to MaxLifetimeDays days;
// anything else is refused (invalid_expiry) naming field.
func LifetimeDays(days int, field string) (time.Duration, error) {
	if days < 0 || days > MaxLifetimeDays {
		return 0, refuse(CodeInvalidExpiry, "%s must be 1 to %d (or absent for no expiry)", field, MaxLifetimeDays)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}
