package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"gatehouse/store"
)

// APIKeyPrefix starts every management API key, so that secret scanners
// and people can recognise one.
const APIKeyPrefix = "gh_key_"

// apiKeyShownPrefix is how many characters of a key are stored in clear to
// tell keys apart in lists: the fixed prefix and 8 random characters.
const apiKeyShownPrefix = len(APIKeyPrefix) + 8

// APIKeys issues and checks management API keys (seeds 000/001). Only
// Super Administrators manage them.
type APIKeys struct {
	Store store.Store
	Now   func() time.Time
}

// APIKeySpec is what creating a key takes.
type APIKeySpec struct {
	Name string
	Role store.Role    // the role requests with the key act with
	TTL  time.Duration // zero: the key does not expire
}

// Create issues a key and returns its secret, which is not stored and
// cannot be shown again.
func (k *APIKeys) Create(ctx context.Context, p Principal, spec APIKeySpec) (string, store.APIKey, error) {
	if !p.Super() {
		return "", store.APIKey{}, refuse(CodeForbidden, "only a Super Administrator may manage API keys")
	}
	if err := checkText(spec.Name, maxNameLen, CodeInvalidName, "API key name"); err != nil {
		return "", store.APIKey{}, err
	}
	if spec.Role == "" {
		spec.Role = store.RoleAdministrator
	}
	if !spec.Role.Valid() {
		return "", store.APIKey{}, refuse(CodeInvalidRole, "unknown role %q: use %q or %q", spec.Role, store.RoleAdministrator, store.RoleSuperAdministrator)
	}
	if spec.TTL < 0 {
		return "", store.APIKey{}, refuse(CodeInvalidExpiry, "key lifetime %s is negative", spec.TTL)
	}
	secret := APIKeyPrefix + newSecret()
	key := store.APIKey{
		OrgID:     p.OrgID,
		Name:      spec.Name,
		Prefix:    secret[:apiKeyShownPrefix],
		Hash:      HashSecret(secret),
		Role:      spec.Role,
		CreatedBy: p.Actor.Name,
	}
	if spec.TTL > 0 {
		exp := now(k.Now).Add(spec.TTL).UTC().Truncate(time.Microsecond)
		key.ExpiresAt = &exp
	}
	key, err := k.Store.CreateAPIKey(p.Context(ctx), key)
	if err != nil {
		return "", store.APIKey{}, fmt.Errorf("admin: create API key: %w", err)
	}
	return secret, key, nil
}

// List returns the organization's keys, newest first.
func (k *APIKeys) List(ctx context.Context, p Principal) ([]store.APIKey, error) {
	if !p.Super() {
		return nil, refuse(CodeForbidden, "only a Super Administrator may manage API keys")
	}
	return k.Store.APIKeys(ctx, p.OrgID)
}

// Revoke revokes a key of the organization.
func (k *APIKeys) Revoke(ctx context.Context, p Principal, id string) error {
	if !p.Super() {
		return refuse(CodeForbidden, "only a Super Administrator may manage API keys")
	}
	err := k.Store.RevokeAPIKey(p.Context(ctx), p.OrgID, id, now(k.Now))
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Code: CodeNotFound, Message: fmt.Sprintf("API key %q not found", id), Err: err}
	}
	return err
}

// ErrBadKey: the secret is not a usable API key (unknown, revoked or
// expired). Callers answer 401 without saying which.
var ErrBadKey = errors.New("admin: invalid API key")

// Authenticate finds the usable key whose secret this is and records its
// use (at most once a minute).
func (k *APIKeys) Authenticate(ctx context.Context, secret string) (store.APIKey, error) {
	hash := HashSecret(secret)
	key, err := k.Store.APIKeyByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, ErrBadKey
	}
	if err != nil {
		return store.APIKey{}, err
	}
	t := now(k.Now)
	if subtle.ConstantTimeCompare(key.Hash, hash) != 1 || !key.Usable(t) {
		return store.APIKey{}, ErrBadKey
	}
	if key.LastUsedAt == nil || t.Sub(*key.LastUsedAt) >= time.Minute {
		if err := k.Store.TouchAPIKey(ctx, key.ID, t); err != nil {
			return store.APIKey{}, err
		}
		used := t.UTC().Truncate(time.Microsecond)
		key.LastUsedAt = &used
	}
	return key, nil
}

// KeyPrincipal is who a request with the key acts as.
func KeyPrincipal(key store.APIKey) Principal {
	return Principal{OrgID: key.OrgID, Role: key.Role, Actor: store.Actor{Kind: store.ActorAPIKey, ID: key.ID, Name: key.Name}}
}
