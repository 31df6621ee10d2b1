package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse/admin/directory"
	"gatehouse/store"
)

// Codes of LDAP sign-in (issue #15).
const (
	CodeInvalidLDAP          = "invalid_ldap_connection" // a connection setting is refused; the message says which
	CodeLDAPNotConfigured    = "ldap_not_configured"     // marking an LDAP user needs the organization's LDAP connection
	CodeLDAPUser             = "ldap_user"               // the password of an LDAP user is the directory's: not set, reset or changed here
	CodeDirectoryUnavailable = "directory_unavailable"   // the directory did not answer for the password
	CodeLDAPTestFailed       = "ldap_connection_failed"  // a connection test failed; the message says where
	defaultLDAPFilter        = "(uid=" + directory.Placeholder + ")"
	defaultLDAPAttribute     = "uid"
	defaultLDAPTimeout       = 5 * time.Second
	ldapSealContextPrefix    = "ldap-bind:"
	maxLDAPUsersListed       = 200
	ldapCreateRetries        = 3
)

// LDAPSpec is what setting the organization's LDAP connection takes.
// Empty and nil fields keep their value (on the first setting: the
// defaults (uid={username}), uid, 5s, enabled, no StartTLS); the bind
// password is write-only.
type LDAPSpec struct {
	URL               string         `json:"url,omitempty"`
	StartTLS          *bool          `json:"startTLS,omitempty"`
	CACertificate     string         `json:"caCertificate,omitempty"` // PEM
	BindDN            string         `json:"bindDN,omitempty"`
	BindPassword      string         `json:"bindPassword,omitempty"`
	BaseDN            string         `json:"baseDN,omitempty"`
	UserFilter        string         `json:"userFilter,omitempty"` // with {username}
	UsernameAttribute string         `json:"usernameAttribute,omitempty"`
	Timeout           *time.Duration `json:"-"`
	Enabled           *bool          `json:"enabled,omitempty"`
}

// LDAPView is the connection as the API shows it: never the bind
// password, only whether it is set.
type LDAPView struct {
	URL               string    `json:"url"`
	StartTLS          bool      `json:"startTLS"`
	CACertificate     string    `json:"caCertificate"`
	BindDN            string    `json:"bindDN"`
	BindPasswordSet   bool      `json:"bindPasswordSet"`
	BaseDN            string    `json:"baseDN"`
	UserFilter        string    `json:"userFilter"`
	UsernameAttribute string    `json:"usernameAttribute"`
	Timeout           string    `json:"timeout"` // a Go duration, e.g. "5s"
	Enabled           bool      `json:"enabled"`
	Users             int       `json:"ldapUsers"` // how many administrators are LDAP users
	Version           int64     `json:"version"`
	UpdatedAt         time.Time `json:"updatedAt"`
}

// LDAPUserView is one LDAP user, for the lists.
type LDAPUserView struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
}

// LDAPStore is what LDAP reads and writes. A store.Store is one.
type LDAPStore interface {
	Administrator(ctx context.Context, org, id string) (store.Administrator, error)
	LDAPConnection(ctx context.Context, org string) (store.LDAPConnection, error)
	PutLDAPConnection(ctx context.Context, org string, fn func(*store.LDAPConnection) error) (store.LDAPConnection, error)
	DeleteLDAPConnection(ctx context.Context, org string) error
	LDAPUsers(ctx context.Context, org string, limit int) ([]store.Administrator, int, error)
	UpdateCredentials(ctx context.Context, org, administratorID string, c store.CredentialsChange) (store.Credentials, error)
}

var _ LDAPStore = store.Store(nil)

// LDAP manages an organization's LDAP connection and its LDAP users
// (seed 002 "Is LDAP user"). Super Administrators only; the operator's
// command line and the management API and console call it alike.
type LDAP struct {
	Store  LDAPStore
	Sealer *Sealer // seals the bind password ("ldap-bind:" + organization id)
}

func ldapSealContext(org string) string { return ldapSealContextPrefix + org }

func errLDAPForbidden() error {
	return refuse(CodeForbidden, "only a Super Administrator may manage the LDAP connection and its users")
}

func errLDAPNotConfigured() error {
	return refuse(CodeLDAPNotConfigured, "the organization has no LDAP connection: set one first")
}

// Get returns the organization's connection; not_found when it has none.
func (l *LDAP) Get(ctx context.Context, p Principal) (LDAPView, error) {
	if !p.Super() {
		return LDAPView{}, errLDAPForbidden()
	}
	c, err := l.Store.LDAPConnection(ctx, p.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		return LDAPView{}, errLDAPNotConfigured()
	}
	if err != nil {
		return LDAPView{}, fmt.Errorf("admin: LDAP connection: %w", err)
	}
	return l.view(ctx, c)
}

// view is c as the API shows it, with how many LDAP users it has.
func (l *LDAP) view(ctx context.Context, c store.LDAPConnection) (LDAPView, error) {
	_, n, err := l.Store.LDAPUsers(ctx, c.OrgID, 0)
	if err != nil {
		return LDAPView{}, fmt.Errorf("admin: LDAP connection: %w", err)
	}
	return LDAPView{URL: c.URL, StartTLS: c.StartTLS, CACertificate: c.CAPEM, BindDN: c.BindDN, BindPasswordSet: c.BindPassword != "",
		BaseDN: c.BaseDN, UserFilter: c.UserFilter, UsernameAttribute: c.UsernameAttribute,
		Timeout: (time.Duration(c.TimeoutMS) * time.Millisecond).String(), Enabled: c.Enabled, Users: n, Version: c.Version, UpdatedAt: c.UpdatedAt}, nil
}

// Set creates or changes the organization's connection; a refused
// setting (invalid_ldap_connection) writes nothing. It does not contact
// the directory: Test does.
func (l *LDAP) Set(ctx context.Context, p Principal, spec LDAPSpec) (LDAPView, error) {
	if !p.Super() {
		return LDAPView{}, errLDAPForbidden()
	}
	ctx = p.Context(ctx)
	var c store.LDAPConnection
	var err error
	for range ldapCreateRetries { // a concurrent first setting: read it and apply this one on top
		c, err = l.Store.PutLDAPConnection(ctx, p.OrgID, func(c *store.LDAPConnection) error { return l.apply(c, spec) })
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		return LDAPView{}, e
	}
	if err != nil {
		return LDAPView{}, fmt.Errorf("admin: set LDAP connection: %w", err)
	}
	return l.view(ctx, c)
}

// apply sets spec on c and validates the result.
func (l *LDAP) apply(c *store.LDAPConnection, spec LDAPSpec) error {
	if c.Version == 0 {
		c.UserFilter, c.UsernameAttribute, c.TimeoutMS, c.Enabled = defaultLDAPFilter, defaultLDAPAttribute, defaultLDAPTimeout.Milliseconds(), true
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = strings.TrimSpace(v)
		}
	}
	set(&c.URL, spec.URL)
	set(&c.CAPEM, spec.CACertificate)
	set(&c.BindDN, spec.BindDN)
	set(&c.BaseDN, spec.BaseDN)
	set(&c.UserFilter, spec.UserFilter)
	set(&c.UsernameAttribute, spec.UsernameAttribute)
	if spec.StartTLS != nil {
		c.StartTLS = *spec.StartTLS
	}
	if spec.Enabled != nil {
		c.Enabled = *spec.Enabled
	}
	if spec.Timeout != nil {
		c.TimeoutMS = spec.Timeout.Milliseconds()
	}
	cfg, err := l.config(*c)
	if spec.BindPassword != "" {
		cfg.BindPassword, err = spec.BindPassword, nil
	}
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return &Error{Code: CodeInvalidLDAP, Message: err.Error()}
	}
	if spec.BindPassword != "" {
		c.BindPassword = l.Sealer.Seal(spec.BindPassword, ldapSealContext(c.OrgID))
	}
	return nil
}

// config is c with its bind password opened.
func (l *LDAP) config(c store.LDAPConnection) (directory.Config, error) {
	return ldapConfig(l.Sealer, c)
}

func ldapConfig(sealer *Sealer, c store.LDAPConnection) (directory.Config, error) {
	cfg := directory.Config{URL: c.URL, StartTLS: c.StartTLS, CAPEM: c.CAPEM, BindDN: c.BindDN, BaseDN: c.BaseDN,
		UserFilter: c.UserFilter, UsernameAttribute: c.UsernameAttribute, Timeout: time.Duration(c.TimeoutMS) * time.Millisecond}
	if c.BindPassword == "" {
		return cfg, nil
	}
	pw, err := sealer.Open(c.BindPassword, ldapSealContext(c.OrgID))
	if err != nil {
		return cfg, fmt.Errorf("admin: the LDAP bind password of %s does not open with this server's key: %w", c.OrgID, err)
	}
	cfg.BindPassword = pw
	return cfg, nil
}

// Delete removes the organization's connection. Its LDAP users stay
// marked and cannot sign in with a password until a connection is set
// again: they never fall back to a local password.
func (l *LDAP) Delete(ctx context.Context, p Principal) error {
	if !p.Super() {
		return errLDAPForbidden()
	}
	err := l.Store.DeleteLDAPConnection(p.Context(ctx), p.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		return errLDAPNotConfigured()
	}
	if err != nil {
		return fmt.Errorf("admin: delete LDAP connection: %w", err)
	}
	return nil
}

// Test connects with the stored settings and binds as the service
// account; with a username it also finds that user's entry as a sign-in
// would. A failure is ldap_connection_failed saying where it failed.
func (l *LDAP) Test(ctx context.Context, p Principal, username string) (directory.TestReport, error) {
	if !p.Super() {
		return directory.TestReport{}, errLDAPForbidden()
	}
	c, err := l.Store.LDAPConnection(ctx, p.OrgID)
	if errors.Is(err, store.ErrNotFound) {
		return directory.TestReport{}, errLDAPNotConfigured()
	}
	if err != nil {
		return directory.TestReport{}, fmt.Errorf("admin: test LDAP connection: %w", err)
	}
	cfg, err := l.config(c)
	if err != nil {
		return directory.TestReport{}, err
	}
	r, err := cfg.Test(ctx, username)
	if err != nil {
		return r, &Error{Code: CodeLDAPTestFailed, Message: strings.TrimPrefix(err.Error(), directory.ErrUnavailable.Error()+": "), Err: err}
	}
	return r, nil
}

// Users lists the organization's LDAP users (the first 200) and how
// many there are.
func (l *LDAP) Users(ctx context.Context, p Principal) ([]LDAPUserView, int, error) {
	if !p.Super() {
		return nil, 0, errLDAPForbidden()
	}
	as, n, err := l.Store.LDAPUsers(ctx, p.OrgID, maxLDAPUsersListed)
	if err != nil {
		return nil, 0, fmt.Errorf("admin: LDAP users: %w", err)
	}
	out := make([]LDAPUserView, 0, len(as))
	for _, a := range as {
		out = append(out, LDAPUserView{ID: a.ID, UserName: a.UserName})
	}
	return out, n, nil
}

// SetUser marks an administrator as an LDAP user (on) or not. Marking
// needs the organization's LDAP connection, and removes the local
// password: an LDAP user's password is the directory's, checked by a bind
// and never against a local hash. Unmarked, the administrator has no
// password until one is set or reset. Audited as credentials.update.
func (l *LDAP) SetUser(ctx context.Context, p Principal, administratorID string, on bool) error {
	if !p.Super() {
		return errLDAPForbidden()
	}
	if on {
		if _, err := l.Store.LDAPConnection(ctx, p.OrgID); errors.Is(err, store.ErrNotFound) {
			return errLDAPNotConfigured()
		} else if err != nil {
			return fmt.Errorf("admin: LDAP user: %w", err)
		}
	}
	_, err := l.Store.UpdateCredentials(p.Context(ctx), p.OrgID, administratorID, store.CredentialsChange{
		Action: store.AuditCredentialsUpdate,
		Update: func(c *store.Credentials) error {
			c.LDAPUser = on
			if on {
				c.PasswordHash, c.MustChangePassword = "", false
			}
			return nil
		}})
	if errors.Is(err, store.ErrNotFound) {
		return notFound(administratorID)
	}
	if err != nil {
		return fmt.Errorf("admin: LDAP user: %w", err)
	}
	return nil
}

// directoryCheck checks an LDAP user's password against the
// organization's directory: ok false for a refusal by the directory;
// an error when it could not judge (no connection, disabled, unreachable),
// directory_unavailable with the detail wrapped for the log.
func (s *SignIn) directoryCheck(ctx context.Context, orgID, username, password string) (bool, error) {
	c, err := s.Store.LDAPConnection(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		return false, &Error{Code: CodeDirectoryUnavailable, Message: errDirectoryUnavailable().Message,
			Err: errors.New("the organization has no LDAP connection")}
	}
	if err != nil {
		return false, fmt.Errorf("admin: LDAP sign-in: %w", err)
	}
	if !c.Enabled {
		return false, &Error{Code: CodeDirectoryUnavailable, Message: errDirectoryUnavailable().Message,
			Err: errors.New("the organization's LDAP connection is disabled")}
	}
	cfg, err := ldapConfig(s.Sealer, c)
	if err != nil {
		return false, err
	}
	err = cfg.Authenticate(ctx, username, password)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, directory.ErrInvalidCredentials):
		return false, nil
	}
	return false, &Error{Code: CodeDirectoryUnavailable, Message: errDirectoryUnavailable().Message, Err: err}
}

func errDirectoryUnavailable() *Error {
	return refuse(CodeDirectoryUnavailable, "the directory that checks your password cannot be reached: try again later")
}

func errLDAPUser() error {
	return refuse(CodeLDAPUser, "this account signs in with its directory (LDAP) password: change it in the directory")
}

// directoryGuess checks an LDAP user's password outside a sign-in (an
// activation), counted against the name's lockout as a sign-in's is: a
// refusal by the directory is invalid_credentials and recorded; a
// directory that cannot judge gives the count back and is
// directory_unavailable.
func (s *SignIn) directoryGuess(ctx context.Context, a store.Administrator, password string) error {
	var notJudged error
	err := s.checkGuess(unproven(ctx), a, store.Session{}, store.LoginInvalidPassword, errInvalidCredentials(), func() bool {
		ok, err := s.directoryCheck(ctx, a.OrgID, a.UserName, password)
		if err != nil {
			notJudged = err
			return true // not a guess: the count is given back
		}
		return ok
	})
	if err != nil {
		return err
	}
	if notJudged != nil {
		if e := (*Error)(nil); errors.As(notJudged, &e) && e.Code == CodeDirectoryUnavailable {
			s.logger().Warn("LDAP activation: the directory did not judge the password", "org", a.OrgID, "administrator", a.ID, "err", e.Err)
			return errDirectoryUnavailable()
		}
		return notJudged
	}
	return nil
}
