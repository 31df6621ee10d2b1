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
