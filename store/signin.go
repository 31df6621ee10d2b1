package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Credentials is what an administrator signs in with, kept apart from the
// Administrator record that SCIM and the API show. An administrator without
// a row has zero Credentials: no password, no second factor, not locked.
// Nothing here is ever written to the audit log but the non-secret view of
// credentialsView.
type Credentials struct {
	AdministratorID string `db:"administrator_id"`
	// PasswordHash is an argon2id PHC string; "" means no password (a
	// Pending administrator, or one who signs in through SSO only).
	PasswordHash string `db:"password_hash"`
	// PasswordChangedAt is set by the store whenever PasswordHash changes.
	PasswordChangedAt  *time.Time `db:"password_changed_at"`
	MustChangePassword bool       `db:"must_change_password"`
	// TOTPSecret is the base32 TOTP seed sealed with the server key
	// (context "totp:" + administrator id); the store never sees it in clear.
	TOTPSecret  string `db:"totp_secret"`
	TOTPEnabled bool   `db:"totp_enabled"`
	// TOTPLastStep is the time step (Unix time / 30 s) of the last TOTP
	// code accepted: a code of this step or an earlier one is a replay.
	TOTPLastStep int64 `db:"totp_last_step"`
	// BreakGlass: this Super Administrator may sign in with a password
	// even when the organization requires SSO.
	BreakGlass bool `db:"break_glass"`
	// LDAPUser: the password is checked by a bind to the organization's
	// LDAP directory, never against a local hash (PasswordHash stays "").
	LDAPUser bool `db:"ldap_user"`
}

// The failed_logins and locked_until columns of the credentials table are
// no longer read: the lockout is counted per name in login_throttle (see
// TakeSignInSlot), for names with and without an account alike.
const credentialsColumns = `administrator_id, password_hash, password_changed_at, must_change_password, totp_secret, totp_enabled,
	totp_last_step, break_glass, ldap_user`

// CredentialsChange is one change of an administrator's credentials, made
// by UpdateCredentials in one transaction with the sessions it ends.
type CredentialsChange struct {
	// Action is the audit action of the change (one of the
	// AuditCredentials* constants, or another "credentials." name).
	Action string
	// Update changes the credentials (zero Credentials when the
	// administrator has none yet). Returning an error writes nothing.
	Update func(*Credentials) error
	// EndSessions deletes every session of the administrator except the
	// one whose hash is KeepSession (nil keeps none): a new password or
	// second factor signs out every other browser.
	EndSessions bool
	KeepSession []byte
	// KeepStage, when not "", becomes the stage of the KeepSession session
	// (a password change moves "change_password" on).
	KeepStage string
}

// Session is a signed-in browser or API client, stored by the SHA-256 of
// the secret its cookie carries, so any instance can serve any request.
type Session struct {
	Hash            []byte    `db:"hash"`
	OrgID           string    `db:"org_id"`
	AdministratorID string    `db:"administrator_id"`
	Method          string    `db:"method"` // SignInPassword, later "saml", "oidc"
	Stage           string    `db:"stage"`  // SessionActive, SessionChangePassword, SessionEnrolTOTP
	IP              string    `db:"ip"`
	UserAgent       string    `db:"user_agent"`
	CreatedAt       time.Time `db:"created_at"`
	LastSeenAt      time.Time `db:"last_seen_at"`
	// ExpiresAt is when the session ends unless touched: the service keeps
	// it at the earlier of its idle and its absolute limit.
	ExpiresAt time.Time `db:"expires_at"`
}

const sessionColumns = `hash, org_id, administrator_id, method, stage, ip, user_agent, created_at, last_seen_at, expires_at`

// Stages of a Session. Only a session in SessionActive may do anything but
// finish its stage.
const (
	SessionActive         = "active"
	SessionChangePassword = "change_password" // must change the password first
	SessionEnrolTOTP      = "enrol_totp"      // the organization requires a second factor the administrator has not set up
)

// Sign-in methods (Session.Method, LoginEvent.Method).
const (
	SignInPassword = "password"
	SignInSAML     = "saml"
	SignInOIDC     = "oidc"
)

// LoginEvent is one row of an administrator's login history (seed 002:
// time, method, IP, browser, result).
type LoginEvent struct {
	Seq             int64     `db:"seq"`
	OrgID           string    `db:"org_id"`
	AdministratorID string    `db:"administrator_id"`
	At              time.Time `db:"at"`
	Method          string    `db:"method"`
	IP              string    `db:"ip"`
	UserAgent       string    `db:"user_agent"`
	Result          string    `db:"result"`
	Location        Location  `db:"location"`
}

// Location is where a sign-in's address was, as the server's GeoIP
// database said at the time of the sign-in: it is stored with the entry,
// not looked up when shown, because the database is replaced over time
// and an address moves. The zero Location is "unknown" (no database, a
// private address, or no entry for it).
type Location struct {
	// CountryCode is the ISO 3166-1 alpha-2 code, e.g. "DE".
	CountryCode string `json:"countryCode,omitempty"`
	// Country and City are names by language ("en", "ru"), as the
	// database has them.
	Country map[string]string `json:"country,omitempty"`
	City    map[string]string `json:"city,omitempty"`
}

// IsZero reports whether l says nothing.
func (l Location) IsZero() bool {
	return l.CountryCode == "" && len(l.Country) == 0 && len(l.City) == 0
}

// CountryName is the country's name in lang, else in English, else "".
func (l Location) CountryName(lang string) string { return placeName(l.Country, lang) }

// CityName is the city's name in lang, else in English, else "".
func (l Location) CityName(lang string) string { return placeName(l.City, lang) }

func placeName(names map[string]string, lang string) string {
	if n := names[lang]; n != "" {
		return n
	}
	return names["en"]
}

// Bounds of a stored Location: a database is the server's own file, but
// what it says is kept small and valid text all the same.
const (
	locationLanguages = 8
	locationName      = 128
)

// clipped is l within the bounds above: names of at most locationName
// bytes of valid text, at most locationLanguages of them (the first in
// order of language), language tags and the country code of at most 16.
func (l Location) clipped() Location {
	names := func(m map[string]string) map[string]string {
		if len(m) == 0 {
			return nil
		}
		langs := make([]string, 0, len(m))
		for k, v := range m {
			if k != "" && len(k) <= 16 && v != "" {
				langs = append(langs, k)
			}
		}
		slices.Sort(langs)
		out := make(map[string]string, min(len(langs), locationLanguages))
		for _, k := range langs[:min(len(langs), locationLanguages)] {
			out[clip(k, 16)] = clip(m[k], locationName)
		}
		return out
	}
	return Location{CountryCode: clip(l.CountryCode, 16), Country: names(l.Country), City: names(l.City)}
}

// Scan implements sql.Scanner for the JSON text column (empty: unknown).
func (l *Location) Scan(src any) error {
	*l = Location{}
	return scanJSON(src, l)
}

// Value implements driver.Valuer: empty text for the zero Location, else JSON.
func (l Location) Value() (driver.Value, error) {
	if l.IsZero() {
		return "", nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// Results of a LoginEvent.
const (
	LoginSuccess         = "success"
	LoginInvalidPassword = "invalid_password" // a wrong password
	LoginInvalidTOTP     = "invalid_totp"     // the right password, a wrong code
	LoginLocked          = "locked"           // refused while locked (written by versions before the count moved ahead of the check)
	LoginPending         = "pending"          // right password, account not activated
	LoginDeactivated     = "deactivated"      // right password, account deactivated
	LoginSSORequired     = "sso_required"     // right password, but the organization signs in through SSO
	// LoginDirectoryUnavailable: an LDAP user's directory did not judge
	// the password (unreachable, TLS refused, no connection); not a guess.
	LoginDirectoryUnavailable = "directory_unavailable"
)

// SignInAttempt is one sign-in of a known administrator, as RecordSignIn
// writes it.
type SignInAttempt struct {
	OrgID           string
	AdministratorID string
	At              time.Time // the service's clock
	Method          string
	IP              string // cut to 64 bytes of valid text
	UserAgent       string // cut to 512 bytes of valid text
	Result          string // one of the Login* results
	// Location is where IP was (the zero Location when unknown), kept
	// with the history entry; see Location for its bounds.
	Location Location
	// Session is created when Result is LoginSuccess (Hash, Stage and
	// ExpiresAt given; the rest comes from the attempt).
	Session *Session
	// TOTPStep, on a success with a TOTP code, is the code's time step. It
	// must be greater than the stored TOTPLastStep, which it replaces:
	// otherwise the code was used before and RecordSignIn returns
	// ErrConflict, writing nothing.
	TOTPStep int64
	// LockedUntil, on a failure that used the last attempt of its name's
	// window (see TakeSignInSlot), is when that lock ends: audited as
	// signin.lockout.
	LockedUntil *time.Time
}

// Audit actions of sign-in and credentials. Part of the management API's
// contract: keep them.
const (
	AuditSignInSuccess = "signin.success"
	AuditSignInFailure = "signin.failure" // after: result, method, ip
	AuditSignInLockout = "signin.lockout" // after: lockedUntil
	AuditSignOut       = "signin.logout"
	AuditSessionsEnd   = "session.end_all" // after: sessions (how many)

	AuditCredentialsUpdate = "credentials.update"
	AuditPasswordChange    = "credentials.password_change"
	AuditPasswordSet       = "credentials.password_set" // by another administrator or the operator
	AuditTOTPEnrol         = "credentials.totp_enrol"
	AuditTOTPReset         = "credentials.totp_reset"
	AuditTOTPReplace       = "credentials.totp_replace"
	AuditCredentialsUnlock = "credentials.unlock"
)

// credentialsView is what the audit log shows of credentials: never a hash
// or a secret, only whether they are set and when they changed.
func credentialsView(c *Credentials) map[string]any {
	v := map[string]any{
		"passwordSet":        c.PasswordHash != "",
		"mustChangePassword": c.MustChangePassword,
		"totpEnabled":        c.TOTPEnabled,
		"breakGlass":         c.BreakGlass,
		"ldapUser":           c.LDAPUser,
	}
	if c.PasswordChangedAt != nil {
		v["passwordChangedAt"] = c.PasswordChangedAt.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// credentialsAudit is the before and after views of a change; a new TOTP
// secret, invisible in the views, is named as replaced.
func credentialsAudit(before, after *Credentials) (map[string]any, map[string]any) {
	b, a := credentialsView(before), credentialsView(after)
	if before.TOTPSecret != after.TOTPSecret && before.TOTPSecret != "" && after.TOTPSecret != "" {
		a["totpSecret"] = "replaced"
	}
	return b, a
}

// clip makes s storable text of at most n bytes (client-supplied IP and
// User-Agent strings: invalid UTF-8 and NUL would be refused by PostgreSQL).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func microTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Credentials returns an administrator's credentials; zero Credentials
// (with AdministratorID set) when it has none. An administrator not of org
// is ErrNotFound.
func (s *SQL) Credentials(ctx context.Context, org, administratorID string) (Credentials, error) {
	var row struct {
		Found string `db:"id"`
		Credentials
	}
	err := s.get(ctx, s.reader, &row, `SELECT a.id, COALESCE(c.administrator_id, a.id) AS administrator_id,
		COALESCE(c.password_hash, '') AS password_hash, c.password_changed_at,
		COALESCE(c.must_change_password, `+s.boolLit(false)+`) AS must_change_password, COALESCE(c.totp_secret, '') AS totp_secret,
		COALESCE(c.totp_enabled, `+s.boolLit(false)+`) AS totp_enabled, COALESCE(c.totp_last_step, 0) AS totp_last_step,
		COALESCE(c.break_glass, `+s.boolLit(false)+`) AS break_glass, COALESCE(c.ldap_user, `+s.boolLit(false)+`) AS ldap_user
		FROM administrators a LEFT JOIN credentials c ON c.administrator_id = a.id WHERE a.id = ? AND a.org_id = ?`, administratorID, org)
	return row.Credentials, err
}

// boolLit is a boolean literal of the dialect.
func (s *SQL) boolLit(b bool) string {
	switch {
	case s.d.name == "postgres" && b:
		return "TRUE"
	case s.d.name == "postgres":
		return "FALSE"
	case b:
		return "1"
	}
	return "0"
}

// lockCredentials makes sure the administrator of org has a credentials
// row and reads it locked, with the administrator's username (for the
// audit log). The administrator's absence is ErrNotFound.
func (s *SQL) lockCredentials(ctx context.Context, tx *sqlx.Tx, org, id string) (Credentials, string, error) {
	var username string
	if err := s.get(ctx, tx, &username, `SELECT username FROM administrators WHERE id = ? AND org_id = ?`, id, org); err != nil {
		return Credentials{}, "", err
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO credentials (administrator_id) VALUES (?) ON CONFLICT (administrator_id) DO NOTHING`, id); err != nil {
		return Credentials{}, "", fmt.Errorf("store: credentials: %w", err)
	}
	var c Credentials
	if err := s.get(ctx, tx, &c, `SELECT `+credentialsColumns+` FROM credentials WHERE administrator_id = ?`+s.d.forUpdate, id); err != nil {
		return Credentials{}, "", err
	}
	return c, username, nil
}

// writeCredentials stores c (the row exists, see lockCredentials).
func (s *SQL) writeCredentials(ctx context.Context, tx *sqlx.Tx, c *Credentials) error {
	_, err := s.exec(ctx, tx, `UPDATE credentials SET password_hash = ?, password_changed_at = ?, must_change_password = ?,
		totp_secret = ?, totp_enabled = ?, totp_last_step = ?, break_glass = ?, ldap_user = ? WHERE administrator_id = ?`,
		c.PasswordHash, c.PasswordChangedAt, c.MustChangePassword, c.TOTPSecret, c.TOTPEnabled, c.TOTPLastStep,
		c.BreakGlass, c.LDAPUser, c.AdministratorID)
	if err != nil {
		return fmt.Errorf("store: write credentials: %w", err)
	}
	return nil
}

// changeCredentials applies fn to the locked credentials and writes and
// audits the result; the administrator id does not change and
// PasswordChangedAt follows the hash.
func (s *SQL) changeCredentials(ctx context.Context, tx *sqlx.Tx, org, id, action string, fn func(*Credentials) error) (Credentials, error) {
	before, username, err := s.lockCredentials(ctx, tx, org, id)
	if err != nil {
		return Credentials{}, err
	}
	c := before
	if err := fn(&c); err != nil {
		return Credentials{}, err
	}
	c.AdministratorID = id
	if c.PasswordHash != before.PasswordHash {
		now := s.timestamp()
		c.PasswordChangedAt = &now
	}
	c.PasswordChangedAt = micro(c.PasswordChangedAt)
	if err := s.writeCredentials(ctx, tx, &c); err != nil {
		return Credentials{}, err
	}
	b, a := credentialsAudit(&before, &c)
	if action == "" {
		action = AuditCredentialsUpdate
	}
	return c, s.audit(ctx, tx, org, change{action: action, targetKind: "administrator", targetID: id, targetName: username,
		before: b, after: a})
}

// UpdateCredentials applies c to an administrator's credentials (creating
// them if it has none) in one transaction holding the row, and ends its
// sessions as c says, in that transaction.
func (s *SQL) UpdateCredentials(ctx context.Context, org, administratorID string, c CredentialsChange) (Credentials, error) {
	if c.Update == nil {
		c.Update = func(*Credentials) error { return nil }
	}
	var out Credentials
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if out, err = s.changeCredentials(ctx, tx, org, administratorID, c.Action, c.Update); err != nil {
			return err
		}
		if c.EndSessions {
			if _, err := s.endSessions(ctx, tx, org, administratorID, c.KeepSession); err != nil {
				return err
			}
		}
		if c.KeepStage != "" && c.KeepSession != nil {
			n, err := s.exec(ctx, tx, `UPDATE sessions SET stage = ? WHERE hash = ? AND administrator_id = ?`, c.KeepStage,
				c.KeepSession, administratorID)
			if err != nil {
				return fmt.Errorf("store: session stage: %w", err)
			}
			if n == 0 {
				return ErrNotFound // the session ended meanwhile: change nothing
			}
		}
		return nil
	})
	if err != nil {
		return Credentials{}, err
	}
	return out, nil
}

// endSessions deletes the administrator's sessions except keep, and audits
// how many ended.
func (s *SQL) endSessions(ctx context.Context, tx *sqlx.Tx, org, id string, keep []byte) (int64, error) {
	var n int64
	var err error
	if keep == nil {
		n, err = s.exec(ctx, tx, `DELETE FROM sessions WHERE administrator_id = ? AND org_id = ?`, id, org)
	} else {
		n, err = s.exec(ctx, tx, `DELETE FROM sessions WHERE administrator_id = ? AND org_id = ? AND hash <> ?`, id, org, keep)
	}
	if err != nil {
		return 0, fmt.Errorf("store: end sessions: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	var username string
	if err := s.get(ctx, tx, &username, `SELECT username FROM administrators WHERE id = ?`, id); err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	return n, s.audit(ctx, tx, org, change{action: AuditSessionsEnd, targetKind: "administrator", targetID: id, targetName: username,
		after: map[string]any{"sessions": n}})
}

// setAdministratorSignIn writes the fields a sign-in path may change on
// the administrator record (Status, LastLoginAt) with a new Version and
// UpdatedAt, so the SCIM ETag moves, and audits the change as
// administrator.update unless quiet. Every other field of after is kept as
// in before.
func (s *SQL) setAdministratorSignIn(ctx context.Context, tx *sqlx.Tx, before Administrator, after *Administrator, quiet bool) error {
	status, last := after.Status, micro(after.LastLoginAt)
	*after = before
	after.Status, after.LastLoginAt = status, last
	if !after.Status.Valid() {
		return fmt.Errorf("store: invalid status %q", after.Status)
	}
	if after.Status == before.Status && equalTimes(after.LastLoginAt, before.LastLoginAt) {
		return nil
	}
	after.Version, after.UpdatedAt = before.Version+1, s.timestamp()
	n, err := s.exec(ctx, tx, `UPDATE administrators SET status = ?, last_login_at = ?, updated_at = ?, version = ?
		WHERE id = ? AND org_id = ? AND version = ?`, string(after.Status), after.LastLoginAt, after.UpdatedAt, after.Version,
		after.ID, after.OrgID, before.Version)
	if err != nil {
		return fmt.Errorf("store: write administrator: %w", err)
	}
	if n == 0 {
		return ErrConflict
	}
	if err := s.changed(ctx, tx, after.OrgID); err != nil {
		return err
	}
	if quiet {
		return nil
	}
	return s.audit(ctx, tx, after.OrgID, change{action: AuditAdministratorUpdate, targetKind: "administrator", targetID: after.ID,
		targetName: after.UserName, before: administratorView(&before), after: administratorView(after)})
}

func equalTimes(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// UseInvitation redeems the invitation whose secret hashes to hash, for
// purpose, at now: in one transaction it checks that the invitation is
// unused and not expired (otherwise ErrNotFound, whichever the reason),
// marks it used, applies fn to the administrator and its credentials,
// writes both, ends every session of the administrator (a new password
// signs out every browser), and audits all of it (invitation.use, and
// administrator.update when fn changed the status). Of concurrent uses of
// one invitation exactly one succeeds. fn may change the administrator's
// Status only; an error from fn writes nothing and leaves the invitation
// unused.
func (s *SQL) UseInvitation(ctx context.Context, hash []byte, purpose string, now time.Time,
	fn func(*Administrator, *Credentials) error) (Administrator, error) {
	now = microTime(now)
	var out Administrator
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var inv Invitation
		if err := s.get(ctx, tx, &inv, `SELECT hash, org_id, administrator_id, purpose, created_at, expires_at, used_at
			FROM invitations WHERE hash = ?`+s.d.forUpdate, hash); err != nil {
			return err
		}
		if inv.Purpose != purpose || inv.UsedAt != nil || !now.Before(inv.ExpiresAt) {
			return ErrNotFound
		}
		n, err := s.exec(ctx, tx, `UPDATE invitations SET used_at = ? WHERE hash = ? AND used_at IS NULL`, now, hash)
		if err != nil {
			return fmt.Errorf("store: use invitation: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		var before Administrator
		if err := s.get(ctx, tx, &before, `SELECT `+administratorColumns+` FROM administrators WHERE id = ? AND org_id = ?`+s.d.forUpdate,
			inv.AdministratorID, inv.OrgID); err != nil {
			return err
		}
		credsBefore, _, err := s.lockCredentials(ctx, tx, inv.OrgID, inv.AdministratorID)
		if err != nil {
			return err
		}
		a, c := before, credsBefore
		if err := fn(&a, &c); err != nil {
			return err
		}
		if err := s.setAdministratorSignIn(ctx, tx, before, &a, false); err != nil {
			return err
		}
		c.AdministratorID = before.ID
		if c.PasswordHash != credsBefore.PasswordHash {
			c.PasswordChangedAt = &now
		}
		c.PasswordChangedAt = micro(c.PasswordChangedAt)
		if err := s.writeCredentials(ctx, tx, &c); err != nil {
			return err
		}
		b, af := credentialsAudit(&credsBefore, &c)
		b["used"], af["used"] = false, true
		af["purpose"] = inv.Purpose
		if err := s.audit(ctx, tx, inv.OrgID, change{action: AuditInvitationUse, targetKind: "administrator", targetID: a.ID,
			targetName: a.UserName, before: b, after: af}); err != nil {
			return err
		}
		out = a
		if a.Email != "" { // the link reached this address
			if _, err := s.exec(ctx, tx, `INSERT INTO email_verifications (administrator_id, email, verified_at) VALUES (?, ?, ?)
				ON CONFLICT (administrator_id) DO UPDATE SET email = excluded.email, verified_at = excluded.verified_at`, a.ID, a.Email, now); err != nil {
				return err
			}
		}
		_, err = s.endSessions(ctx, tx, inv.OrgID, a.ID, nil)
		return err
	})
	if err != nil {
		return Administrator{}, err
	}
	return out, nil
}

// RecordSignIn writes one sign-in attempt of a known administrator in one
// transaction: the login history row and the audit entry (signin.success
// or signin.failure, and signin.lockout when a.LockedUntil is set); on
// success also the administrator's LastLoginAt (with a new Version; the
// change is shown in the signin.success entry, not as an
// administrator.update), the TOTP step and the new session. It returns the
// credentials as written. A TOTP step not above the stored one is
// ErrConflict and writes nothing. The lockout is not RecordSignIn's: the
// attempt was counted before its password was checked (TakeSignInSlot).
func (s *SQL) RecordSignIn(ctx context.Context, a SignInAttempt) (Credentials, error) {
	if a.Result == "" || a.Method == "" || a.At.IsZero() {
		return Credentials{}, errors.New("store: sign-in attempt needs a result, a method and a time")
	}
	if a.Result == LoginSuccess && a.Session == nil {
		return Credentials{}, errors.New("store: a successful sign-in needs its session")
	}
	var out Credentials
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = s.recordSignIn(ctx, tx, a)
		return err
	})
	if err != nil {
		return Credentials{}, err
	}
	return out, nil
}

func (s *SQL) recordSignIn(ctx context.Context, tx *sqlx.Tx, a SignInAttempt) (Credentials, error) {
	a.At = microTime(a.At)
	a.IP, a.UserAgent, a.Location = clip(a.IP, 64), clip(a.UserAgent, 512), a.Location.clipped()
	var adm Administrator
	if err := s.get(ctx, tx, &adm, `SELECT `+administratorColumns+` FROM administrators WHERE id = ? AND org_id = ?`+s.d.forUpdate,
		a.AdministratorID, a.OrgID); err != nil {
		return Credentials{}, err
	}
	c, _, err := s.lockCredentials(ctx, tx, a.OrgID, a.AdministratorID)
	if err != nil {
		return Credentials{}, err
	}
	view := map[string]any{"method": a.Method, "ip": a.IP, "result": a.Result}
	if a.Result == LoginSuccess {
		if a.TOTPStep != 0 {
			if a.TOTPStep <= c.TOTPLastStep {
				return Credentials{}, ErrConflict
			}
			c.TOTPLastStep = a.TOTPStep
			if err := s.writeCredentials(ctx, tx, &c); err != nil {
				return Credentials{}, err
			}
		}
		after := adm
		after.LastLoginAt = &a.At
		if err := s.setAdministratorSignIn(ctx, tx, adm, &after, true); err != nil {
			return Credentials{}, err
		}
		ss := *a.Session
		ss.OrgID, ss.AdministratorID, ss.Method, ss.IP, ss.UserAgent = a.OrgID, a.AdministratorID, a.Method, a.IP, a.UserAgent
		ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = a.At, a.At, microTime(ss.ExpiresAt)
		if len(ss.Hash) == 0 || ss.Stage == "" || !ss.ExpiresAt.After(a.At) {
			return Credentials{}, errors.New("store: a session needs a hash, a stage and a future expiry")
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ss.Hash, ss.OrgID, ss.AdministratorID, ss.Method, ss.Stage, ss.IP, ss.UserAgent, ss.CreatedAt, ss.LastSeenAt,
			ss.ExpiresAt); err != nil {
			if s.d.uniqueViolation(err) {
				return Credentials{}, &ExistsError{Kind: "session", Field: "hash", Existing: "(secret)"}
			}
			return Credentials{}, fmt.Errorf("store: create session: %w", err)
		}
		view["stage"] = ss.Stage
		view["lastLoginAt"] = a.At.Format(time.RFC3339Nano)
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO login_history (org_id, administrator_id, at, method, ip, user_agent, result, location)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.OrgID, a.AdministratorID, a.At, a.Method, a.IP, a.UserAgent, a.Result, a.Location); err != nil {
		return Credentials{}, fmt.Errorf("store: login history: %w", err)
	}
	action := AuditSignInFailure
	if a.Result == LoginSuccess {
		action = AuditSignInSuccess
	}
	if err := s.audit(ctx, tx, a.OrgID, change{action: action, targetKind: "administrator", targetID: adm.ID,
		targetName: adm.UserName, after: view}); err != nil {
		return Credentials{}, err
	}
	if a.Result != LoginSuccess && a.LockedUntil != nil {
		if err := s.audit(ctx, tx, a.OrgID, change{action: AuditSignInLockout, targetKind: "administrator", targetID: adm.ID,
			targetName: adm.UserName, after: map[string]any{"lockedUntil": a.LockedUntil.UTC().Format(time.RFC3339Nano), "ip": a.IP}}); err != nil {
			return Credentials{}, err
		}
	}
	return c, nil
}

// SignInSlot is one password sign-in asking for the right to have its
// password checked (TakeSignInSlot). Both keys are throttle keys of
// login_throttle, shared by every instance.
type SignInSlot struct {
	At time.Time // the service's clock
	// Name is the key of the name signed in as — an organization and a
	// username, whether or not an administrator has it, so that a lock
	// does not tell which names exist. At most LockAfter attempts are
	// granted in a window of LockFor that starts at the first; the
	// LockAfter-th starts it again, so the lock lasts LockFor from it.
	Name      string
	LockAfter int
	LockFor   time.Duration
	// Address is the key of the client's address ("" counts none): at most
	// AddressLimit attempts in a fixed window of AddressWindow.
	Address       string
	AddressLimit  int
	AddressWindow time.Duration
	// Number is the attempt's number in the name's window, as
	// TakeSignInSlot returned it (for ReturnSignInSlot).
	Number int
}

// SlotVerdict is TakeSignInSlot's answer.
type SlotVerdict int

const (
	// SlotGranted: the password may be checked.
	SlotGranted SlotVerdict = iota
	// SlotLocked: the name used its attempts; the attempt counted against
	// the address.
	SlotLocked
	// SlotAddressLimited: the address used its attempts; nothing was
	// counted or written.
	SlotAddressLimited
)

// TakeSignInSlot counts a sign-in attempt, before its password is checked,
// in one transaction: against the address, then against the name. It
// returns the verdict and, when granted, the attempt's number in the
// name's window (LockAfter: the last one, which locks the name unless it
// succeeds). Because the count comes first and is shared by every
// instance, no number of concurrent attempts gets more than LockAfter
// password checks per name, or AddressLimit per address, in a window.
func (s *SQL) TakeSignInSlot(ctx context.Context, slot SignInSlot) (SlotVerdict, int, error) {
	if slot.At.IsZero() || slot.Name == "" || slot.LockAfter <= 0 || slot.LockFor <= 0 ||
		(slot.Address != "" && (slot.AddressLimit <= 0 || slot.AddressWindow <= 0)) {
		return 0, 0, errors.New("store: a sign-in slot needs a time, a name, its limit and window, and the address's when it has one")
	}
	verdict, n := SlotGranted, 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if slot.Address != "" {
			ip, err := s.countAttempt(ctx, tx, slot.Address, slot.At, slot.AddressWindow, 0)
			if err != nil {
				return err
			}
			if ip > slot.AddressLimit {
				verdict = SlotAddressLimited
				return errSlotRefused // nothing to keep: the window is full already
			}
		}
		var err error
		if n, err = s.countAttempt(ctx, tx, slot.Name, slot.At, slot.LockFor, slot.LockAfter); err != nil {
			return err
		}
		if n <= slot.LockAfter {
			return nil
		}
		// A refusal while locked writes nothing else — no login history,
		// no audit entry — whether or not the name has an account, so
		// that it costs the same work either way (the lock itself was
		// recorded by the attempt that locked).
		verdict = SlotLocked
		return nil
	})
	if errors.Is(err, errSlotRefused) {
		return SlotAddressLimited, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: sign-in slot: %w", err)
	}
	if verdict != SlotGranted {
		n = 0
	}
	return verdict, n, nil
}

var errSlotRefused = errors.New("store: slot refused")

// countAttempt counts a sign-in or reset attempt for key in login_throttle
// (see windowCounter).
func (s *SQL) countAttempt(ctx context.Context, tx *sqlx.Tx, key string, now time.Time, window time.Duration, restartAt int) (int, error) {
	return loginThrottle.add(ctx, s, tx, clip(key, 512), now, window, restartAt)
}

// ReturnSignInSlot gives back what a granted attempt counted once its
// password proved right, in one transaction: its count against the
// address and against the name (each unless its window started again
// since slot.At), or with restartName (a success) the name's whole count
// — unless another attempt of the name was counted after this one
// (slot.Number, as TakeSignInSlot returned it): then the count, and any
// lock, runs on, so that no burst of guesses gets more than LockAfter
// checks by racing a success. A slot with Number 0 (an unlock) always
// restarts the name.
func (s *SQL) ReturnSignInSlot(ctx context.Context, slot SignInSlot, restartName bool) error {
	giveBack := func(tx *sqlx.Tx, key string) error {
		_, err := s.exec(ctx, tx, `UPDATE login_throttle SET failures = failures - 1 WHERE key = ? AND failures > 0 AND window_start <= ?`,
			clip(key, 512), microTime(slot.At))
		return err
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if slot.Address != "" {
			if err := giveBack(tx, slot.Address); err != nil {
				return err
			}
		}
		switch {
		case slot.Name == "":
		case restartName && slot.Number == 0: // an unlock, a reset
			if _, err := s.exec(ctx, tx, `DELETE FROM login_throttle WHERE key = ?`, clip(slot.Name, 512)); err != nil {
				return err
			}
		case restartName:
			// Only when nothing was counted after this attempt: a guess
			// racing a success keeps its count, and a lock its length.
			if _, err := s.exec(ctx, tx, `DELETE FROM login_throttle WHERE key = ? AND failures <= ? AND window_start <= ?`,
				clip(slot.Name, 512), slot.Number, microTime(slot.At)); err != nil {
				return err
			}
		default:
			return giveBack(tx, slot.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: return sign-in slot: %w", err)
	}
	return nil
}

// RecordNameFailure is RecordSignIn for a name no administrator has: the
// failure is written to the name's throttle window only, in one
// transaction, so that a wrong password costs the same writes whether or
// not the name exists.
func (s *SQL) RecordNameFailure(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE login_throttle SET failures = failures WHERE key = ?`, clip(name, 512))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: name failure: %w", err)
	}
	return nil
}

// LoginHistory returns up to limit (1..1000; 0 means 50) events of an
// administrator, newest first, below beforeSeq when it is not 0.
func (s *SQL) LoginHistory(ctx context.Context, org, administratorID string, limit int, beforeSeq int64) ([]LoginEvent, error) {
	if limit == 0 {
		limit = 50
	}
	if limit < 0 || limit > 1000 {
		return nil, fmt.Errorf("%w: login history limit %d (1..1000)", ErrInvalidQuery, limit)
	}
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	out := []LoginEvent{}
	err := s.selectAll(ctx, s.reader, &out, `SELECT seq, org_id, administrator_id, at, method, ip, user_agent, result, location FROM login_history
		WHERE administrator_id = ? AND org_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, administratorID, org, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("store: login history: %w", err)
	}
	return out, nil
}

// Session returns the session whose secret hashes to hash; one that has
// expired at now is ErrNotFound.
func (s *SQL) Session(ctx context.Context, hash []byte, now time.Time) (Session, error) {
	var ss Session
	err := s.get(ctx, s.reader, &ss, `SELECT `+sessionColumns+` FROM sessions WHERE hash = ? AND expires_at > ?`, hash, microTime(now))
	return ss, err
}

// TouchSession records that the session was used at now and moves its
// expiry to expiresAt, unless it was already touched in the minute before
// now (a session used by every request is written at most once a minute)
// or has expired. It reports whether it wrote.
func (s *SQL) TouchSession(ctx context.Context, hash []byte, now, expiresAt time.Time) (bool, error) {
	now = microTime(now)
	n, err := s.exec(ctx, s.writer, `UPDATE sessions SET last_seen_at = ?, expires_at = ?
		WHERE hash = ? AND last_seen_at <= ? AND expires_at > ?`, now, microTime(expiresAt), hash, now.Add(-time.Minute), now)
	if err != nil {
		return false, fmt.Errorf("store: touch session: %w", err)
	}
	return n > 0, nil
}

// DeleteSession ends one session (a logout), audited as signin.logout, and
// with it what it signed in to applications (EndOIDCSession); an unknown
// hash is ErrNotFound.
func (s *SQL) DeleteSession(ctx context.Context, hash []byte) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			Session
			UserName string `db:"username"`
		}
		if err := s.get(ctx, tx, &row, `SELECT s.hash, s.org_id, s.administrator_id, s.method, s.stage, s.ip, s.user_agent, s.created_at,
			s.last_seen_at, s.expires_at, a.username FROM sessions s JOIN administrators a ON a.id = s.administrator_id WHERE s.hash = ?`,
			hash); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sessions WHERE hash = ?`, hash); err != nil {
			return fmt.Errorf("store: delete session: %w", err)
		}
		if err := s.endGrants(ctx, tx, `g.sid = ?`, SessionSID(hash), "", s.timestamp()); err != nil {
			return err
		}
		return s.audit(ctx, tx, row.OrgID, change{action: AuditSignOut, targetKind: "administrator", targetID: row.AdministratorID,
			targetName: row.UserName, after: map[string]any{"method": row.Method}})
	})
}

// Prune deletes what no rule reads any more: sessions past their expiry,
// sign-in throttle windows older than keepThrottle, emails sent more than
// keepSent ago (their bodies were cleared when sent), assertion IDs past
// their expiry, SSO requests expired more than keepThrottle ago, the
// OpenID Provider's expired requests, tokens and grants and its logouts
// delivered more than keepSent ago. It returns how
// many rows it removed. Every instance may run it; the deletes are
// idempotent.
func (s *SQL) Prune(ctx context.Context, now time.Time, keepThrottle, keepSent time.Duration) (int64, error) {
	now = now.UTC()
	var total int64
	for _, d := range []struct {
		query string
		arg   time.Time
	}{
		{`DELETE FROM sessions WHERE expires_at < ?`, now},
		{`DELETE FROM login_throttle WHERE window_start < ?`, now.Add(-keepThrottle)},
		{`DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, now.Add(-keepSent)},
		{`DELETE FROM sso_replay WHERE expires_at < ?`, now},
		// A test sign-in's result is read after its request expired.
		{`DELETE FROM sso_requests WHERE expires_at < ?`, now.Add(-keepThrottle)},
		{`DELETE FROM oidc_auth_requests WHERE expires_at < ?`, now},
		{`DELETE FROM oidc_tokens WHERE expires_at < ?`, now},
		{`DELETE FROM oidc_grants WHERE expires_at < ?`, now},
		{`DELETE FROM oidc_logouts WHERE sent_at IS NOT NULL AND sent_at < ?`, now.Add(-keepSent)},
	} {
		n, err := s.exec(ctx, s.writer, d.query, d.arg)
		if err != nil {
			return total, fmt.Errorf("store: prune: %w", err)
		}
		total += n
	}
	return total, nil
}
