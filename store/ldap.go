package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// LDAPConnection is an organization's one LDAP directory, against which
// the password of its LDAP users (Credentials.LDAPUser) is checked by a
// bind. Package admin validates it; BindPassword is sealed with the
// server key by the caller — the store never sees it in clear.
type LDAPConnection struct {
	OrgID string `db:"org_id"`
	// URL is ldaps://host[:port], or ldap://host[:port] with StartTLS.
	URL      string `db:"url"`
	StartTLS bool   `db:"start_tls"`
	// CAPEM is the PEM of the certificate authorities the directory's
	// certificate must chain to (the system roots are not used).
	CAPEM        string `db:"ca_pem"`
	BindDN       string `db:"bind_dn"`
	BindPassword string `db:"bind_password"`
	BaseDN       string `db:"base_dn"`
	// UserFilter holds the placeholder {username}; UsernameAttribute is
	// the attribute of the entry that must equal the username exactly.
	UserFilter        string    `db:"user_filter"`
	UsernameAttribute string    `db:"username_attribute"`
	TimeoutMS         int64     `db:"timeout_ms"`
	Enabled           bool      `db:"enabled"`
	CreatedAt         time.Time `db:"created_at"`
	UpdatedAt         time.Time `db:"updated_at"`
	Version           int64     `db:"version"`
}

const ldapConnectionColumns = `org_id, url, start_tls, ca_pem, bind_dn, bind_password, base_dn, user_filter, username_attribute,
	timeout_ms, enabled, created_at, updated_at, version`

// Audit actions of the LDAP connection.
const (
	AuditLDAPConnectionCreate = "ldap_connection.create"
	AuditLDAPConnectionUpdate = "ldap_connection.update"
	AuditLDAPConnectionDelete = "ldap_connection.delete"
)

// ldapConnectionView is what the audit log shows of a connection: its
// settings, and only whether the bind password is set or replaced.
func ldapConnectionView(c *LDAPConnection) map[string]any {
	return map[string]any{"url": c.URL, "startTLS": c.StartTLS, "caSet": c.CAPEM != "", "bindDN": c.BindDN,
		"bindPasswordSet": c.BindPassword != "", "baseDN": c.BaseDN, "userFilter": c.UserFilter,
		"usernameAttribute": c.UsernameAttribute, "timeoutMs": c.TimeoutMS, "enabled": c.Enabled}
}

func validLDAPConnection(c *LDAPConnection) error {
	if c.OrgID == "" || c.URL == "" || c.UserFilter == "" || c.UsernameAttribute == "" || c.TimeoutMS <= 0 {
		return errors.New("store: an LDAP connection needs an organization, a URL, a filter, a username attribute and a timeout")
	}
	for _, f := range []string{c.URL, c.CAPEM, c.BindDN, c.BindPassword, c.BaseDN, c.UserFilter, c.UsernameAttribute} {
		if !storable(f) {
			return errors.New("store: LDAP connection fields must be UTF-8 text")
		}
	}
	return nil
}

// LDAPConnection returns the organization's LDAP connection; ErrNotFound
// when it has none.
func (s *SQL) LDAPConnection(ctx context.Context, org string) (LDAPConnection, error) {
	var c LDAPConnection
	err := s.get(ctx, s.reader, &c, `SELECT `+ldapConnectionColumns+` FROM ldap_connections WHERE org_id = ?`, org)
	return c, err
}

// PutLDAPConnection creates the organization's LDAP connection or changes
// it: fn gets the current one (zero but OrgID when there is none) inside
// the transaction that holds it. The organization's absence is
// ErrNotFound; a concurrent first creation ErrConflict.
func (s *SQL) PutLDAPConnection(ctx context.Context, org string, fn func(*LDAPConnection) error) (LDAPConnection, error) {
	var out LDAPConnection
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var before LDAPConnection
		err := s.get(ctx, tx, &before, `SELECT `+ldapConnectionColumns+` FROM ldap_connections WHERE org_id = ?`+s.d.forUpdate, org)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if !exists {
			var id string
			if err := s.get(ctx, tx, &id, `SELECT id FROM orgs WHERE id = ?`, org); err != nil {
				return err
			}
			before = LDAPConnection{OrgID: org}
		}
		c := before
		if err := fn(&c); err != nil {
			return err
		}
		c.OrgID, c.UpdatedAt = org, s.timestamp()
		if err := validLDAPConnection(&c); err != nil {
			return err
		}
		if !exists {
			c.CreatedAt, c.Version = c.UpdatedAt, 1
			n, err := s.exec(ctx, tx, `INSERT INTO ldap_connections (`+ldapConnectionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (org_id) DO NOTHING`, c.OrgID, c.URL, c.StartTLS, c.CAPEM, c.BindDN, c.BindPassword, c.BaseDN, c.UserFilter,
				c.UsernameAttribute, c.TimeoutMS, c.Enabled, c.CreatedAt, c.UpdatedAt, c.Version)
			if err != nil {
				return fmt.Errorf("store: create LDAP connection: %w", err)
			}
			if n == 0 {
				return ErrConflict
			}
			out = c
			return s.audit(ctx, tx, org, change{action: AuditLDAPConnectionCreate, targetKind: "ldap_connection", targetID: org,
				targetName: c.URL, after: ldapConnectionView(&c)})
		}
		c.CreatedAt, c.Version = before.CreatedAt, before.Version+1
		_, err = s.exec(ctx, tx, `UPDATE ldap_connections SET url = ?, start_tls = ?, ca_pem = ?, bind_dn = ?, bind_password = ?,
			base_dn = ?, user_filter = ?, username_attribute = ?, timeout_ms = ?, enabled = ?, updated_at = ?, version = ?
			WHERE org_id = ?`, c.URL, c.StartTLS, c.CAPEM, c.BindDN, c.BindPassword, c.BaseDN, c.UserFilter, c.UsernameAttribute,
			c.TimeoutMS, c.Enabled, c.UpdatedAt, c.Version, org)
		if err != nil {
			return fmt.Errorf("store: update LDAP connection: %w", err)
		}
		out = c
		b, a := ldapConnectionView(&before), ldapConnectionView(&c)
		if before.BindPassword != c.BindPassword && before.BindPassword != "" && c.BindPassword != "" {
			a["bindPassword"] = "replaced"
		}
		if before.CAPEM != c.CAPEM && before.CAPEM != "" && c.CAPEM != "" {
			a["ca"] = "replaced"
		}
		return s.audit(ctx, tx, org, change{action: AuditLDAPConnectionUpdate, targetKind: "ldap_connection", targetID: org,
			targetName: c.URL, before: b, after: a})
	})
	return out, err
}

// DeleteLDAPConnection removes the organization's LDAP connection. Its LDAP
// users stay marked: their password sign-ins are refused until a
// connection is set again (they never fall back to a local password).
func (s *SQL) DeleteLDAPConnection(ctx context.Context, org string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var c LDAPConnection
		if err := s.get(ctx, tx, &c, `SELECT `+ldapConnectionColumns+` FROM ldap_connections WHERE org_id = ?`+s.d.forUpdate, org); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM ldap_connections WHERE org_id = ?`, org); err != nil {
			return fmt.Errorf("store: delete LDAP connection: %w", err)
		}
		return s.audit(ctx, tx, org, change{action: AuditLDAPConnectionDelete, targetKind: "ldap_connection", targetID: org,
			targetName: c.URL, before: ldapConnectionView(&c)})
	})
}

// LDAPUsers returns up to limit of the organization's LDAP users in
// creation order, and how many it has.
func (s *SQL) LDAPUsers(ctx context.Context, org string, limit int) ([]Administrator, int, error) {
	var total int
	if err := s.get(ctx, s.reader, &total, `SELECT COUNT(*) FROM credentials c JOIN administrators a ON a.id = c.administrator_id
		WHERE a.org_id = ? AND c.ldap_user`, org); err != nil {
		return nil, 0, fmt.Errorf("store: LDAP users: %w", err)
	}
	as := []Administrator{}
	if err := s.selectAll(ctx, s.reader, &as, `SELECT `+prefixed(administratorColumns, "a")+` FROM administrators a
		JOIN credentials c ON c.administrator_id = a.id WHERE a.org_id = ? AND c.ldap_user ORDER BY a.seq LIMIT ?`, org, limit); err != nil {
		return nil, 0, fmt.Errorf("store: LDAP users: %w", err)
	}
	return as, total, nil
}
