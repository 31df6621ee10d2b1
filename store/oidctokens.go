package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// The OpenID Provider's flows (issue #14): authorization requests, grants
// and their tokens, and the back-channel logouts owed to clients. Package
// sso/provider gives them their meaning; the store keeps them so that any
// instance serves any step, and makes the steps that must happen once
// (using a code, exchanging a refresh token) happen once.

// ErrReused: an authorization code or refresh token was presented after it
// had been used. The store revoked the grant it belongs to in the same
// transaction (RFC 6749 §4.1.2, OAuth 2.0 Security BCP §4.14.2).
var ErrReused = errors.New("store: used twice")

// Kinds of an OIDCToken.
const (
	OIDCAccessToken  = "access"
	OIDCRefreshToken = "refresh"
)

// SessionSID is the public name of a console session (the OIDC "sid"
// claim): derived from the hash of its secret, so it names the session
// without opening it.
func SessionSID(sessionHash []byte) string {
	sum := sha256.Sum256(append([]byte("gatehouse sid\x00"), sessionHash...))
	return hex.EncodeToString(sum[:16])
}

// OIDCAuthRequest is an authorization request from /authorize until its
// code is exchanged.
type OIDCAuthRequest struct {
	ID        string    `db:"id"`
	ClientID  string    `db:"client_id"`
	Params    string    `db:"params"` // the request, as JSON (package sso/provider's)
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
	// Set once the administrator signed in (SignInOIDCAuthRequest).
	OrgID           string     `db:"org_id"`
	AdministratorID string     `db:"administrator_id"`
	SID             string     `db:"sid"`
	AuthTime        *time.Time `db:"auth_time"`
	AMR             Strings    `db:"amr"`
	CodeHash        []byte     `db:"code_hash"`
	CodeUsedAt      *time.Time `db:"code_used_at"`
}

const oidcAuthRequestColumns = `id, client_id, params, created_at, expires_at, org_id, administrator_id, sid, auth_time, amr, code_hash, code_used_at`

// CreateOIDCAuthRequest stores a new authorization request.
func (s *SQL) CreateOIDCAuthRequest(ctx context.Context, r OIDCAuthRequest) error {
	if r.ID == "" || r.ClientID == "" || r.ExpiresAt.IsZero() || !storable(r.Params) || !storable(r.ClientID) {
		return errors.New("store: an authorization request needs an id, a client, UTF-8 parameters and an expiry")
	}
	if r.AMR == nil {
		r.AMR = Strings{}
	}
	_, err := s.exec(ctx, s.writer, `INSERT INTO oidc_auth_requests (id, client_id, params, created_at, expires_at, amr)
		VALUES (?, ?, ?, ?, ?, ?)`, r.ID, r.ClientID, r.Params, s.timestamp(), microTime(r.ExpiresAt), r.AMR)
	if err != nil {
		return fmt.Errorf("store: create authorization request: %w", err)
	}
	return nil
}

// OIDCAuthRequest returns an authorization request that has not expired
// at now (ErrNotFound otherwise).
func (s *SQL) OIDCAuthRequest(ctx context.Context, id string, now time.Time) (OIDCAuthRequest, error) {
	var r OIDCAuthRequest
	err := s.get(ctx, s.writer, &r, `SELECT `+oidcAuthRequestColumns+` FROM oidc_auth_requests WHERE id = ? AND expires_at > ?`,
		id, microTime(now))
	return r, err
}

// SignInOIDCAuthRequest records who signed in for an authorization request
// whose code has not been issued yet (ErrNotFound otherwise, or when it
// expired at now).
func (s *SQL) SignInOIDCAuthRequest(ctx context.Context, id, org, administrator, sid string, authTime time.Time, amr []string, now time.Time) error {
	n, err := s.exec(ctx, s.writer, `UPDATE oidc_auth_requests SET org_id = ?, administrator_id = ?, sid = ?, auth_time = ?, amr = ?
		WHERE id = ? AND code_hash IS NULL AND expires_at > ?`, org, administrator, sid, microTime(authTime), Strings(amr), id, microTime(now))
	if err != nil {
		return fmt.Errorf("store: sign in authorization request: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetOIDCAuthCode gives a signed-in authorization request its code (the
// hash of it), once: a request without a sign-in, with a code already, or
// expired at now is ErrNotFound.
func (s *SQL) SetOIDCAuthCode(ctx context.Context, id string, codeHash []byte, now time.Time) error {
	n, err := s.exec(ctx, s.writer, `UPDATE oidc_auth_requests SET code_hash = ?
		WHERE id = ? AND code_hash IS NULL AND administrator_id <> '' AND expires_at > ?`, codeHash, id, microTime(now))
	if err != nil {
		return fmt.Errorf("store: save authorization code: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// UseOIDCAuthCode marks the code of codeHash used and returns its request.
// Of concurrent uses exactly one succeeds. An unknown or expired code is
// ErrNotFound; a code used before is ErrReused, and the grant it gave (the
// grant's id is the request's) is revoked in the same transaction.
func (s *SQL) UseOIDCAuthCode(ctx context.Context, codeHash []byte, now time.Time) (OIDCAuthRequest, error) {
	now = microTime(now)
	var r OIDCAuthRequest
	reused := false // the revocation commits; the caller gets ErrReused
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.get(ctx, tx, &r, `SELECT `+oidcAuthRequestColumns+` FROM oidc_auth_requests WHERE code_hash = ? AND expires_at > ?`+s.d.forUpdate,
			codeHash, now); err != nil {
			return err
		}
		if r.CodeUsedAt != nil {
			reused = true
			_, err := s.exec(ctx, tx, `UPDATE oidc_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, now, r.ID)
			return err
		}
		_, err := s.exec(ctx, tx, `UPDATE oidc_auth_requests SET code_used_at = ? WHERE id = ?`, now, r.ID)
		r.CodeUsedAt = &now
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return OIDCAuthRequest{}, err
	case err != nil:
		return OIDCAuthRequest{}, fmt.Errorf("store: use authorization code: %w", err)
	case reused:
		return OIDCAuthRequest{}, ErrReused
	}
	return r, nil
}

// OIDCGrant is what one authorization code gave one client for one
// administrator: the family of every token issued from it, revoked as a
// whole.
type OIDCGrant struct {
	ID              string     `db:"id"` // the authorization request's id
	ClientID        string     `db:"client_id"`
	OrgID           string     `db:"org_id"`
	AdministratorID string     `db:"administrator_id"`
	SID             string     `db:"sid"`
	Scopes          Strings    `db:"scopes"`
	AuthTime        time.Time  `db:"auth_time"`
	AMR             Strings    `db:"amr"`
	CreatedAt       time.Time  `db:"created_at"`
	ExpiresAt       time.Time  `db:"expires_at"` // no refresh after it
	RevokedAt       *time.Time `db:"revoked_at"`
}

const oidcGrantColumns = `id, client_id, org_id, administrator_id, sid, scopes, auth_time, amr, created_at, expires_at, revoked_at`

// Live reports whether the grant may still be used at now.
func (g OIDCGrant) Live(now time.Time) bool { return g.RevokedAt == nil && now.Before(g.ExpiresAt) }

// OIDCToken is an access or refresh token of a grant.
type OIDCToken struct {
	ID        string     `db:"id"`
	GrantID   string     `db:"grant_id"`
	Kind      string     `db:"kind"` // OIDCAccessToken, OIDCRefreshToken
	CreatedAt time.Time  `db:"created_at"`
	ExpiresAt time.Time  `db:"expires_at"`
	UsedAt    *time.Time `db:"used_at"` // a refresh token exchanged
}

// IssueOIDCTokens stores tokens of grant g in one transaction. With
// exchanged == "", g is new and is created (from a code just used).
// Otherwise exchanged is the id of the refresh token of g these tokens
// replace: it is marked used first, and of concurrent exchanges of it
// exactly one marks it. One already used is ErrReused and revokes g,
// unless it was used no more than grace before now (a client's parallel
// requests, or its retry of a refresh whose answer it lost): those get
// tokens of g too. A grant that is not live at now, or an unknown
// refresh token, is ErrNotFound.
func (s *SQL) IssueOIDCTokens(ctx context.Context, g OIDCGrant, exchanged string, grace time.Duration, tokens []OIDCToken, now time.Time) error {
	now = microTime(now)
	reused := false // the revocation commits; the caller gets ErrReused
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if exchanged == "" {
			if g.Scopes == nil {
				g.Scopes = Strings{}
			}
			if g.AMR == nil {
				g.AMR = Strings{}
			}
			if _, err := s.exec(ctx, tx, `INSERT INTO oidc_grants (`+oidcGrantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
				g.ID, g.ClientID, g.OrgID, g.AdministratorID, g.SID, g.Scopes, microTime(g.AuthTime), g.AMR, now, microTime(g.ExpiresAt)); err != nil {
				return err
			}
		} else {
			var live OIDCGrant
			if err := s.get(ctx, tx, &live, `SELECT `+oidcGrantColumns+` FROM oidc_grants WHERE id = ?`+s.d.forUpdate, g.ID); err != nil {
				return err
			}
			if !live.Live(now) {
				return ErrNotFound
			}
			n, err := s.exec(ctx, tx, `UPDATE oidc_tokens SET used_at = ? WHERE id = ? AND grant_id = ? AND kind = ? AND used_at IS NULL AND expires_at > ?`,
				now, exchanged, g.ID, OIDCRefreshToken, now)
			if err != nil {
				return err
			}
			if n == 0 {
				var used *time.Time
				if err := s.get(ctx, tx, &used, `SELECT used_at FROM oidc_tokens WHERE id = ? AND grant_id = ?`, exchanged, g.ID); err != nil {
					return err
				}
				if used == nil {
					return ErrNotFound // expired
				}
				if grace <= 0 || now.After(used.Add(grace)) {
					reused = true
					_, err := s.exec(ctx, tx, `UPDATE oidc_grants SET revoked_at = ? WHERE id = ?`, now, g.ID)
					return err
				}
				// Within the grace: tokens of g below, nothing revoked.
			}
		}
		for _, t := range tokens {
			if _, err := s.exec(ctx, tx, `INSERT INTO oidc_tokens (id, grant_id, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
				t.ID, g.ID, t.Kind, now, microTime(t.ExpiresAt)); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return err
	case err != nil:
		return fmt.Errorf("store: issue tokens: %w", err)
	case reused:
		return ErrReused
	}
	return nil
}

// OIDCToken returns a token and its grant as stored, whatever their state
// (ErrNotFound for an unknown id).
func (s *SQL) OIDCToken(ctx context.Context, id string) (OIDCToken, OIDCGrant, error) {
	var t OIDCToken
	if err := s.get(ctx, s.reader, &t, `SELECT id, grant_id, kind, created_at, expires_at, used_at FROM oidc_tokens WHERE id = ?`, id); err != nil {
		return OIDCToken{}, OIDCGrant{}, err
	}
	var g OIDCGrant
	if err := s.get(ctx, s.reader, &g, `SELECT `+oidcGrantColumns+` FROM oidc_grants WHERE id = ?`, t.GrantID); err != nil {
		return OIDCToken{}, OIDCGrant{}, err
	}
	return t, g, nil
}

// RevokeOIDCGrant revokes a grant: none of its tokens works any more. An
// unknown grant is ErrNotFound; one revoked already stays as it was.
func (s *SQL) RevokeOIDCGrant(ctx context.Context, id string, now time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var one int
		if err := s.get(ctx, tx, &one, `SELECT 1 FROM oidc_grants WHERE id = ?`, id); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `UPDATE oidc_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, microTime(now), id)
		return err
	})
}

// DeleteOIDCToken removes one token (an access token its client revoked).
func (s *SQL) DeleteOIDCToken(ctx context.Context, id string) error {
	_, err := s.exec(ctx, s.writer, `DELETE FROM oidc_tokens WHERE id = ?`, id)
	return err
}

// EndOIDCSession ends what the console session sid gave applications: its
// grants are revoked, and every client with a back-channel logout URI that
// had a live grant of it is owed a logout token, except the client
// initiating the logout (except, "" for none).
func (s *SQL) EndOIDCSession(ctx context.Context, sid, except string, now time.Time) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		return s.endGrants(ctx, tx, `g.sid = ?`, sid, except, microTime(now))
	})
}

// endGrants revokes the live grants matching where (on oidc_grants g, one
// argument arg) and queues one back-channel logout per client and session
// for the clients that have a back-channel logout URI, except the client
// except.
func (s *SQL) endGrants(ctx context.Context, tx *sqlx.Tx, where string, arg any, except string, now time.Time) error {
	if _, err := s.exec(ctx, tx, `INSERT INTO oidc_logouts (id, client_id, administrator_id, sid, created_at, next_attempt_at)
		SELECT MIN(g.id), g.client_id, MIN(g.administrator_id), g.sid, ?, ? FROM oidc_grants g JOIN oidc_clients c ON c.id = g.client_id
		WHERE `+where+` AND g.revoked_at IS NULL AND g.expires_at > ? AND c.backchannel_logout_uri <> '' AND g.client_id <> ?
		GROUP BY g.client_id, g.sid`, now, now, arg, now, except); err != nil {
		return fmt.Errorf("store: queue back-channel logouts: %w", err)
	}
	if _, err := s.exec(ctx, tx, `UPDATE oidc_grants SET revoked_at = ? WHERE id IN (
		SELECT g.id FROM oidc_grants g WHERE `+where+` AND g.revoked_at IS NULL)`, now, arg); err != nil {
		return fmt.Errorf("store: revoke grants: %w", err)
	}
	return nil
}

// deprovision ends everything an administrator who is deactivated or
// deleted was signed in to, in the transaction that does it: their
// console sessions, their grants to applications, and a back-channel
// logout owed to each application they were signed in to.
func (s *SQL) deprovision(ctx context.Context, tx *sqlx.Tx, org, id string) error {
	if _, err := s.endSessions(ctx, tx, org, id, nil); err != nil {
		return err
	}
	return s.endGrants(ctx, tx, `g.administrator_id = ?`, id, "", s.timestamp())
}

// OIDCLogout is a back-channel logout token owed to a client.
type OIDCLogout struct {
	Seq             int64      `db:"seq"`
	ID              string     `db:"id"`
	ClientID        string     `db:"client_id"`
	AdministratorID string     `db:"administrator_id"` // the token's sub
	SID             string     `db:"sid"`
	CreatedAt       time.Time  `db:"created_at"`
	Attempts        int        `db:"attempts"`
	NextAttemptAt   time.Time  `db:"next_attempt_at"`
	ClaimedUntil    *time.Time `db:"claimed_until"`
	LastError       string     `db:"last_error"`
	SentAt          *time.Time `db:"sent_at"`
}

const oidcLogoutColumns = `seq, id, client_id, administrator_id, sid, created_at, attempts, next_attempt_at, claimed_until, last_error, sent_at`

// ClaimOIDCLogouts claims up to limit logouts due at now for lease, oldest
// first, like ClaimEmails: at least once, one instance at a time.
func (s *SQL) ClaimOIDCLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OIDCLogout, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("store: claim logouts: invalid limit %d or lease %v", limit, lease)
	}
	now = microTime(now)
	var due int
	if err := s.get(ctx, s.reader, &due, `SELECT COUNT(*) FROM (SELECT 1 FROM oidc_logouts WHERE sent_at IS NULL AND next_attempt_at <= ?
		AND (claimed_until IS NULL OR claimed_until <= ?) LIMIT 1) x`, now, now); err != nil {
		return nil, fmt.Errorf("store: claim logouts: %w", err)
	}
	if due == 0 { // the common case, without a write
		return nil, nil
	}
	lock := ""
	if s.d.name == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []OIDCLogout
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		return sqlx.SelectContext(ctx, tx, &out, s.q(`UPDATE oidc_logouts SET claimed_until = ? WHERE seq IN (
			SELECT seq FROM oidc_logouts WHERE sent_at IS NULL AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
			ORDER BY seq LIMIT ?`+lock+`) RETURNING `+oidcLogoutColumns), now.Add(lease), now, now, limit)
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim logouts: %w", err)
	}
	slices.SortFunc(out, func(a, b OIDCLogout) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// MarkOIDCLogoutSent records that the client accepted the logout token.
func (s *SQL) MarkOIDCLogoutSent(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, s.writer, `UPDATE oidc_logouts SET sent_at = ?, claimed_until = NULL, last_error = '' WHERE id = ? AND sent_at IS NULL`,
		microTime(at), id)
	return err
}

// MarkOIDCLogoutFailed records a failed delivery: the next attempt at next.
func (s *SQL) MarkOIDCLogoutFailed(ctx context.Context, id, errText string, next time.Time) error {
	_, err := s.exec(ctx, s.writer, `UPDATE oidc_logouts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_until = NULL
		WHERE id = ? AND sent_at IS NULL`, cleanError(errText), microTime(next), id)
	return err
}

// VerifiedEmail returns the address an administrator proved to receive
// mail at ("" if none).
func (s *SQL) VerifiedEmail(ctx context.Context, administrator string) (string, error) {
	var email string
	err := s.get(ctx, s.reader, &email, `SELECT email FROM email_verifications WHERE administrator_id = ?`, administrator)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return email, err
}

// OIDCIntrospection is what one introspection request needs (RFC 7662),
// read at once: the asking client's credentials and, when Found, the
// access or refresh token asked about, its grant, its administrator and
// the address they proved.
type OIDCIntrospection struct {
	Client OIDCClientCredentials
	// Found: the token exists and its grant was given to this client
	// (another client's token is not found).
	Found bool
	Token OIDCToken
	Grant OIDCGrant
	// Administrator holds what claims are made of: ID, OrgID, UserName,
	// GivenName, FamilyName, Email, Language, Role and Status. Its ID is
	// "" when the grant's administrator is gone.
	Administrator Administrator
	// VerifiedEmail is the address the administrator proved to receive
	// mail at ("" if none; see VerifiedEmail).
	VerifiedEmail string
}

// OIDCIntrospection reads client's credentials and token's record in one
// statement: introspection answers every API call of the product's
// applications, and on SQLite each statement costs more than the join
// (BENCHMARKS.md, "OpenID Provider"). An unknown client is ErrNotFound.
func (s *SQL) OIDCIntrospection(ctx context.Context, client, token string) (OIDCIntrospection, error) {
	// The arguments come in through p, not as "c.id = ?" and "t.id = ?":
	// SQLite propagates a parameter compared to a joined column into the
	// join and must then prepare the statement again at every binding,
	// which cost five times the read itself.
	st, err := s.stmt(ctx, s.reader, `WITH p (token, client) AS (SELECT CAST(? AS TEXT), CAST(? AS TEXT))
		SELECT c.secret_hash, c.public, c.disabled,
		t.grant_id, t.kind, t.created_at, t.expires_at,
		g.org_id, g.administrator_id, g.sid, g.scopes, g.auth_time, g.amr, g.created_at, g.expires_at, g.revoked_at,
		a.id, a.username, a.given_name, a.family_name, a.email, a.language, a.role, a.status,
		v.email
		FROM p JOIN oidc_clients c ON c.id = p.client
		LEFT JOIN oidc_tokens t ON t.id = p.token
		LEFT JOIN oidc_grants g ON g.id = t.grant_id AND g.client_id = c.id
		LEFT JOIN administrators a ON a.id = g.administrator_id AND a.org_id = g.org_id
		LEFT JOIN email_verifications v ON v.administrator_id = a.id`)
	if err != nil {
		return OIDCIntrospection{}, err
	}
	var (
		in                                           OIDCIntrospection
		grantID, kind, orgID, adminID, sid           sql.NullString
		tCreated, tExpires, auth, gCreated, gExpires sql.NullTime
		revoked                                      sql.NullTime
		aID, user, given, family, email, lang, role  sql.NullString
		status, verified                             sql.NullString
	)
	err = st.QueryRowContext(ctx, token, client).Scan(&in.Client.SecretHash, &in.Client.Public, &in.Client.Disabled,
		&grantID, &kind, &tCreated, &tExpires,
		&orgID, &adminID, &sid, &in.Grant.Scopes, &auth, &in.Grant.AMR, &gCreated, &gExpires, &revoked,
		&aID, &user, &given, &family, &email, &lang, &role, &status, &verified)
	if errors.Is(err, sql.ErrNoRows) {
		return OIDCIntrospection{}, ErrNotFound
	}
	if err != nil {
		return OIDCIntrospection{}, unavailable(fmt.Errorf("store: introspection: %w", err))
	}
	if !orgID.Valid { // no token, or another client's
		in.Grant = OIDCGrant{}
		return in, nil
	}
	in.Found = true
	in.Token = OIDCToken{ID: token, GrantID: grantID.String, Kind: kind.String, CreatedAt: tCreated.Time, ExpiresAt: tExpires.Time}
	g := &in.Grant
	g.ID, g.ClientID, g.OrgID, g.AdministratorID, g.SID = grantID.String, client, orgID.String, adminID.String, sid.String
	g.AuthTime, g.CreatedAt, g.ExpiresAt = auth.Time, gCreated.Time, gExpires.Time
	if revoked.Valid {
		g.RevokedAt = &revoked.Time
	}
	if aID.Valid {
		in.Administrator = Administrator{ID: aID.String, OrgID: orgID.String, UserName: user.String, GivenName: given.String,
			FamilyName: family.String, Email: email.String, Language: lang.String, Role: Role(role.String), Status: Status(status.String)}
	}
	in.VerifiedEmail = verified.String
	return in, nil
}
