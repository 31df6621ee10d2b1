package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// SSOConnection is one of an organization's identity providers for
// sign-in: SAML 2.0 or OpenID Connect. Config holds the kind's settings as
// JSON (package sso defines them); Secret holds what must stay secret (the
// SAML SP private key, the OIDC client secret) sealed with the server key
// by the caller — the store never sees it in clear.
type SSOConnection struct {
	ID      string `db:"id"`
	OrgID   string `db:"org_id"`
	Kind    string `db:"kind"` // SSOSAML or SSOOIDC
	Name    string `db:"name"`
	Enabled bool   `db:"enabled"`
	// UsernameFrom says where the username comes from: "nameid" or
	// "attribute:NAME" (SAML), "claim:NAME" (OIDC). It matches an
	// administrator only if byte-for-byte equal.
	UsernameFrom string    `db:"username_from"`
	Config       RawJSON   `db:"config"`
	Secret       string    `db:"secret"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
	Version      int64     `db:"version"`
}

// Kinds of SSOConnection.
const (
	SSOSAML = "saml"
	SSOOIDC = "oidc"
)

const ssoConnectionColumns = `id, org_id, kind, name, enabled, username_from, config, secret, created_at, updated_at, version`

// Audit actions of SSO.
const (
	AuditSSOConnectionCreate = "sso_connection.create"
	AuditSSOConnectionUpdate = "sso_connection.update"
	AuditSSOConnectionDelete = "sso_connection.delete"
)

// ssoConnectionView is what the audit log shows of a connection: its
// settings, and only whether the secret changed.
func ssoConnectionView(c *SSOConnection) map[string]any {
	if c == nil {
		return nil
	}
	return map[string]any{"kind": c.Kind, "name": c.Name, "enabled": c.Enabled, "usernameFrom": c.UsernameFrom,
		"config": string(c.Config), "secretSet": c.Secret != ""}
}

func validSSOConnection(c *SSOConnection) error {
	switch {
	case c.OrgID == "":
		return errors.New("store: SSO connection without organization")
	case c.Kind != SSOSAML && c.Kind != SSOOIDC:
		return fmt.Errorf("store: invalid SSO connection kind %q", c.Kind)
	case !storable(c.Name) || !storable(c.UsernameFrom) || !storable(c.Secret):
		return errors.New("store: SSO connection fields must be UTF-8 text")
	}
	return queryableJSON(c.Config)
}

// CreateSSOConnection stores a new connection.
func (s *SQL) CreateSSOConnection(ctx context.Context, c SSOConnection) (SSOConnection, error) {
	if err := validSSOConnection(&c); err != nil {
		return SSOConnection{}, err
	}
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	now := s.timestamp()
	c.CreatedAt, c.UpdatedAt, c.Version = now, now, 1
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO sso_connections (`+ssoConnectionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.OrgID, c.Kind, c.Name, c.Enabled, c.UsernameFrom, c.Config, c.Secret, c.CreatedAt, c.UpdatedAt, c.Version)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, c.OrgID, change{action: AuditSSOConnectionCreate, targetKind: "sso_connection", targetID: c.ID,
			targetName: c.Name, after: ssoConnectionView(&c)})
	})
	if err := s.createError(err, &ExistsError{Kind: "SSO connection", Field: "id", Existing: c.ID}, "SSO connection"); err != nil {
		return SSOConnection{}, err
	}
	return c, nil
}

// SSOConnection returns one connection of org.
func (s *SQL) SSOConnection(ctx context.Context, org, id string) (SSOConnection, error) {
	var c SSOConnection
	err := s.get(ctx, s.reader, &c, `SELECT `+ssoConnectionColumns+` FROM sso_connections WHERE id = ? AND org_id = ?`, id, org)
	return c, err
}

// SSOConnectionByID returns a connection of any organization: the ACS and
// callback URLs name the connection, and the connection names its
// organization.
func (s *SQL) SSOConnectionByID(ctx context.Context, id string) (SSOConnection, error) {
	var c SSOConnection
	err := s.get(ctx, s.reader, &c, `SELECT `+ssoConnectionColumns+` FROM sso_connections WHERE id = ?`, id)
	return c, err
}

// SSOConnections lists an organization's connections in creation order.
func (s *SQL) SSOConnections(ctx context.Context, org string) ([]SSOConnection, error) {
	cs := []SSOConnection{}
	if err := s.selectAll(ctx, s.reader, &cs, `SELECT `+ssoConnectionColumns+` FROM sso_connections WHERE org_id = ? ORDER BY seq`, org); err != nil {
		return nil, fmt.Errorf("store: list SSO connections: %w", err)
	}
	return cs, nil
}

// AllSSOConnections lists the connections of every organization of a
// kind (the SAML metadata refresher's work list).
func (s *SQL) AllSSOConnections(ctx context.Context, kind string) ([]SSOConnection, error) {
	cs := []SSOConnection{}
	if err := s.selectAll(ctx, s.reader, &cs, `SELECT `+ssoConnectionColumns+` FROM sso_connections WHERE kind = ? ORDER BY seq`, kind); err != nil {
		return nil, fmt.Errorf("store: list SSO connections: %w", err)
	}
	return cs, nil
}

// UpdateSSOConnection applies fn to a connection of org.
func (s *SQL) UpdateSSOConnection(ctx context.Context, org, id string, fn func(*SSOConnection) error) (SSOConnection, error) {
	var before SSOConnection
	return updateRecord(ctx, s, `SELECT `+ssoConnectionColumns+` FROM sso_connections WHERE id = ? AND org_id = ?`, []any{id, org}, fn,
		func(b, after *SSOConnection) {
			before = *b
			after.ID, after.OrgID, after.Kind, after.CreatedAt = b.ID, b.OrgID, b.Kind, b.CreatedAt
			after.Version, after.UpdatedAt = b.Version+1, s.timestamp()
		},
		func(tx *sqlx.Tx, c *SSOConnection) (int64, error) {
			if err := validSSOConnection(c); err != nil {
				return 0, err
			}
			n, err := s.exec(ctx, tx, `UPDATE sso_connections SET name = ?, enabled = ?, username_from = ?, config = ?, secret = ?,
				updated_at = ?, version = ? WHERE id = ? AND version = ?`, c.Name, c.Enabled, c.UsernameFrom, c.Config, c.Secret,
				c.UpdatedAt, c.Version, c.ID, c.Version-1)
			if err != nil || n == 0 {
				return n, err
			}
			b, a := ssoConnectionView(&before), ssoConnectionView(c)
			if before.Secret != c.Secret && before.Secret != "" && c.Secret != "" {
				a["secret"] = "replaced"
			}
			return n, s.audit(ctx, tx, org, change{action: AuditSSOConnectionUpdate, targetKind: "sso_connection", targetID: c.ID,
				targetName: c.Name, before: b, after: a})
		})
}

// DeleteSSOConnection removes a connection, its requests in flight and
// its replay cache.
func (s *SQL) DeleteSSOConnection(ctx context.Context, org, id string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var c SSOConnection
		if err := s.get(ctx, tx, &c, `SELECT `+ssoConnectionColumns+` FROM sso_connections WHERE id = ? AND org_id = ?`, id, org); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sso_replay WHERE connection_id = ?`, id); err != nil {
			return fmt.Errorf("store: delete SSO connection: %w", err)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sso_connections WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: delete SSO connection: %w", err)
		}
		return s.audit(ctx, tx, org, change{action: AuditSSOConnectionDelete, targetKind: "sso_connection", targetID: id,
			targetName: c.Name, before: ssoConnectionView(&c)})
	})
}

// SSORequest is a sign-in sent to an identity provider and not yet
// answered: the SAML AuthnRequest's ID or the OIDC state. It is bound to
// the browser that started it (Browser: the SHA-256 of a cookie's secret)
// and to its connection, and is used once.
type SSORequest struct {
	ID           string `db:"id"`
	ConnectionID string `db:"connection_id"`
	OrgID        string `db:"org_id"`
	Browser      []byte `db:"browser"`
	Nonce        string `db:"nonce"`    // OIDC
	Verifier     string `db:"verifier"` // OIDC PKCE code verifier, sealed by the caller
	// RedirectTo is the relative path the browser lands on after sign-in.
	RedirectTo string     `db:"redirect_to"`
	Test       bool       `db:"test"` // a Super Administrator's test: no session, a result kept
	CreatedAt  time.Time  `db:"created_at"`
	ExpiresAt  time.Time  `db:"expires_at"`
	UsedAt     *time.Time `db:"used_at"`
	// Result is a test sign-in's outcome (JSON), for the administrator
	// who ran it.
	Result RawJSON `db:"result"`
}

const ssoRequestColumns = `id, connection_id, org_id, browser, nonce, verifier, redirect_to, test, created_at, expires_at, used_at, result`

// CreateSSORequest stores a request in flight; ErrLimit when its
// connection has MaxSSORequestsInFlight already.
func (s *SQL) CreateSSORequest(ctx context.Context, r SSORequest) (SSORequest, error) {
	if r.ID == "" || r.ConnectionID == "" || len(r.Browser) == 0 || r.ExpiresAt.IsZero() {
		return SSORequest{}, errors.New("store: an SSO request needs an id, a connection, a browser and an expiry")
	}
	r.CreatedAt = s.timestamp()
	r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	err := s.createSSORequest(ctx, r)
	if errors.Is(err, ErrLimit) {
		return SSORequest{}, err
	}
	if err := s.createError(err, &ExistsError{Kind: "SSO request", Field: "id", Existing: r.ID}, "SSO request"); err != nil {
		return SSORequest{}, err
	}
	return r, nil
}

// PendingSSORequest returns the request id of the connection if it is
// unused, unexpired at now and bound to browser; ErrNotFound otherwise.
// It does not use it (see UseSSORequest).
func (s *SQL) PendingSSORequest(ctx context.Context, id, connectionID string, browser []byte, now time.Time) (SSORequest, error) {
	var r SSORequest
	err := s.get(ctx, s.reader, &r, `SELECT `+ssoRequestColumns+` FROM sso_requests WHERE id = ? AND connection_id = ? AND browser = ?
		AND used_at IS NULL AND expires_at > ?`, id, connectionID, browser, now.UTC())
	return r, err
}

// UseSSORequest marks the request used if it is unused, unexpired at now,
// of the connection and bound to browser, and returns it; otherwise
// ErrNotFound. Of two concurrent uses exactly one succeeds.
func (s *SQL) UseSSORequest(ctx context.Context, id, connectionID string, browser []byte, now time.Time) (SSORequest, error) {
	var r SSORequest
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		r, err = s.useSSORequest(ctx, tx, id, connectionID, browser, now)
		return err
	})
	return r, err
}

// UseSSORequestRecording is UseSSORequest and RecordAssertion in one
// transaction (one durable commit instead of two): the request is used
// only if the assertion was not seen before, ErrReplay otherwise.
func (s *SQL) UseSSORequestRecording(ctx context.Context, id, connectionID string, browser []byte, now time.Time,
	assertionID string, expiresAt time.Time) (SSORequest, error) {
	var r SSORequest
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if r, err = s.useSSORequest(ctx, tx, id, connectionID, browser, now); err != nil {
			return err
		}
		return s.recordAssertion(ctx, tx, connectionID, assertionID, expiresAt)
	})
	return r, err
}

func (s *SQL) useSSORequest(ctx context.Context, tx *sqlx.Tx, id, connectionID string, browser []byte, now time.Time) (SSORequest, error) {
	var r SSORequest
	n, err := s.exec(ctx, tx, `UPDATE sso_requests SET used_at = ? WHERE id = ? AND connection_id = ? AND browser = ?
		AND used_at IS NULL AND expires_at > ?`, now.UTC(), id, connectionID, browser, now.UTC())
	if err != nil {
		return r, fmt.Errorf("store: use SSO request: %w", err)
	}
	if n == 0 {
		return r, ErrNotFound
	}
	return r, s.get(ctx, tx, &r, `SELECT `+ssoRequestColumns+` FROM sso_requests WHERE id = ?`, id)
}

// SetSSORequestResult keeps a test sign-in's outcome.
func (s *SQL) SetSSORequestResult(ctx context.Context, id string, result RawJSON) error {
	n, err := s.exec(ctx, s.writer, `UPDATE sso_requests SET result = ? WHERE id = ? AND test`, result, id)
	if err != nil {
		return fmt.Errorf("store: SSO test result: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// SSORequest returns a request of org (a test's result, for its reader).
func (s *SQL) SSORequest(ctx context.Context, org, id string) (SSORequest, error) {
	var r SSORequest
	err := s.get(ctx, s.reader, &r, `SELECT `+ssoRequestColumns+` FROM sso_requests WHERE id = ? AND org_id = ?`, id, org)
	return r, err
}

// SSOTests returns the connection's most recent test sign-ins that have
// a result, newest first.
func (s *SQL) SSOTests(ctx context.Context, org, connectionID string, limit int) ([]SSORequest, error) {
	rs := []SSORequest{}
	err := s.selectAll(ctx, s.reader, &rs, `SELECT `+ssoRequestColumns+` FROM sso_requests WHERE org_id = ? AND connection_id = ? AND test
		AND result IS NOT NULL ORDER BY created_at DESC LIMIT ?`, org, connectionID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: SSO tests: %w", err)
	}
	return rs, nil
}

// ErrReplay: an assertion ID already seen on the connection.
var ErrReplay = errors.New("store: assertion already used")

// RecordAssertion remembers an assertion ID of the connection until
// expiresAt; an ID already remembered is ErrReplay. Every instance on the
// database shares the cache.
func (s *SQL) RecordAssertion(ctx context.Context, connectionID, assertionID string, expiresAt time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.recordAssertion(ctx, tx, connectionID, assertionID, expiresAt) })
}

func (s *SQL) recordAssertion(ctx context.Context, tx *sqlx.Tx, connectionID, assertionID string, expiresAt time.Time) error {
	// ON CONFLICT DO NOTHING: on PostgreSQL a unique violation would
	// abort the transaction the caller may still use.
	n, err := s.exec(ctx, tx, `INSERT INTO sso_replay (connection_id, assertion_id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (connection_id, assertion_id) DO NOTHING`, connectionID, assertionID, expiresAt.UTC().Truncate(time.Microsecond))
	if err != nil {
		return fmt.Errorf("store: replay cache: %w", err)
	}
	if n == 0 {
		return ErrReplay
	}
	return nil
}
