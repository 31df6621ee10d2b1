package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const (
	orgInsertColumns = `id, slug, name, scim_enabled, super_admin_group, require_totp, require_sso, created_at, updated_at, version`
	// selectOrg reads an Org with its flag (a column of a table, so that
	// SQLite's driver knows it holds a time).
	selectOrg = `SELECT ` + orgInsertColumns + `, super_admin_missing.since AS super_admin_missing_at
		FROM orgs LEFT JOIN super_admin_missing ON super_admin_missing.org_id = orgs.id`
)

// CreateOrg writes the organization, its domains, its first administrator
// and that administrator's invitation in one transaction.
func (s *SQL) CreateOrg(ctx context.Context, n NewOrg) (Org, Administrator, error) {
	now := s.timestamp()
	o := n.Org
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	o.CreatedAt, o.UpdatedAt, o.Version = now, now, 1
	owner := n.Owner
	owner.OrgID = o.ID
	if !storable(o.SuperAdminGroup) {
		return Org{}, Administrator{}, errors.New("store: super administrator group is not valid UTF-8 text")
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO orgs (`+orgInsertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.Slug, o.Name, o.SCIMEnabled, o.SuperAdminGroup, o.RequireTOTP, o.RequireSSO, o.CreatedAt, o.UpdatedAt, o.Version)
		if s.d.uniqueViolation(err) {
			return &ExistsError{Kind: "organization", Field: "slug", Existing: o.Slug}
		}
		if err != nil {
			return fmt.Errorf("store: create org: %w", err)
		}
		if err := s.audit(ctx, tx, o.ID, change{action: AuditOrgCreate, targetKind: "organization", targetID: o.ID,
			targetName: o.Slug, after: orgView(&o)}); err != nil {
			return err
		}
		for _, d := range n.Domains {
			if err := s.addDomain(ctx, tx, o.ID, d, now); err != nil {
				return err
			}
		}
		owner, err = s.insertAdministrator(ctx, tx, owner, now)
		if err != nil {
			return err
		}
		if n.Invitation.Hash != nil {
			inv := n.Invitation
			inv.OrgID, inv.AdministratorID = o.ID, owner.ID
			return s.insertInvitation(ctx, tx, inv, owner.UserName, now)
		}
		return nil
	})
	if err != nil {
		return Org{}, Administrator{}, err
	}
	return o, owner, nil
}

// Org returns an organization by id.
func (s *SQL) Org(ctx context.Context, id string) (Org, error) {
	var o Org
	err := s.get(ctx, s.reader, &o, selectOrg+` WHERE id = ?`, id)
	return o, err
}

// OrgBySlug returns an organization by its slug.
func (s *SQL) OrgBySlug(ctx context.Context, slug string) (Org, error) {
	var o Org
	if !storable(slug) {
		return o, ErrNotFound // a sign-in form's typing: no stored slug can equal it
	}
	err := s.get(ctx, s.reader, &o, selectOrg+` WHERE slug = ?`, slug)
	return o, err
}

// UpdateOrg applies fn to the organization; its id, slug and creation time
// do not change. A new designated group recomputes the roles of the members
// of the groups named by the old and the new designation.
func (s *SQL) UpdateOrg(ctx context.Context, id string, fn func(*Org) error) (Org, error) {
	var before Org
	// The flag is read after the write: PostgreSQL locks no outer join.
	o, err := updateRecord(ctx, s, `SELECT `+orgInsertColumns+` FROM orgs WHERE id = ?`, []any{id}, fn,
		func(b, after *Org) {
			before = *b
			after.ID, after.Slug, after.CreatedAt = before.ID, before.Slug, before.CreatedAt
			after.Version, after.UpdatedAt = before.Version+1, s.timestamp()
		},
		func(tx *sqlx.Tx, o *Org) (int64, error) {
			if !storable(o.SuperAdminGroup) {
				return 0, errors.New("store: super administrator group is not valid UTF-8 text")
			}
			n, err := s.exec(ctx, tx, `UPDATE orgs SET name = ?, scim_enabled = ?, super_admin_group = ?, require_totp = ?, require_sso = ?,
				updated_at = ?, version = ? WHERE id = ? AND version = ?`, o.Name, o.SCIMEnabled, o.SuperAdminGroup, o.RequireTOTP, o.RequireSSO,
				o.UpdatedAt, o.Version, o.ID, o.Version-1)
			if err != nil || n == 0 {
				return n, err
			}
			if err := s.audit(ctx, tx, o.ID, change{action: AuditOrgUpdate, targetKind: "organization", targetID: o.ID,
				targetName: o.Slug, before: orgView(&before), after: orgView(o)}); err != nil {
				return 0, err
			}
			designated := before.SuperAdminGroup
			if o.SuperAdminGroup == designated {
				return n, nil
			}
			return n, s.syncRolesWhere(ctx, tx, o.ID, `id IN (SELECT m.administrator_id FROM group_members m
				JOIN groups g ON g.id = m.group_id WHERE g.org_id = ? AND g.display_name IN (?, ?))`, o.ID, designated, o.SuperAdminGroup)
		})
	if err != nil {
		return Org{}, err
	}
	var since []time.Time
	if err := sqlx.SelectContext(ctx, s.reader, &since, s.q(`SELECT since FROM super_admin_missing WHERE org_id = ?`), id); err != nil {
		return Org{}, unavailable(fmt.Errorf("store: super flag: %w", err))
	}
	if len(since) > 0 {
		o.SuperAdminMissingSince = &since[0]
	}
	return o, nil
}

// RegisteredDomains lists an organization's domains in alphabetical order.
func (s *SQL) RegisteredDomains(ctx context.Context, org string) ([]RegisteredDomain, error) {
	ds := []RegisteredDomain{}
	err := s.selectAll(ctx, s.reader, &ds, `SELECT org_id, domain, created_at FROM registered_domains WHERE org_id = ? ORDER BY domain`, org)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return ds, nil
}

// AddRegisteredDomain registers a domain (stored lower case).
func (s *SQL) AddRegisteredDomain(ctx context.Context, org, domain string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		return s.addDomain(ctx, tx, org, domain, s.timestamp())
	})
}

func (s *SQL) addDomain(ctx context.Context, tx *sqlx.Tx, org, domain string, now time.Time) error {
	domain = strings.ToLower(domain)
	_, err := s.exec(ctx, tx, `INSERT INTO registered_domains (org_id, domain, created_at) VALUES (?, ?, ?)`, org, domain, now)
	if err := s.createError(err, &ExistsError{Kind: "registered domain", Field: "domain", Existing: domain}, "registered domain"); err != nil {
		return err
	}
	return s.audit(ctx, tx, org, change{action: AuditDomainAdd, targetKind: "domain", targetName: domain,
		after: map[string]any{"domain": domain}})
}

// RemoveRegisteredDomain unregisters a domain; an absent one is ErrNotFound.
func (s *SQL) RemoveRegisteredDomain(ctx context.Context, org, domain string) error {
	domain = strings.ToLower(domain)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM registered_domains WHERE org_id = ? AND domain = ?`, org, domain)
		if err != nil {
			return fmt.Errorf("store: remove domain: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		return s.audit(ctx, tx, org, change{action: AuditDomainRemove, targetKind: "domain", targetName: domain,
			before: map[string]any{"domain": domain}})
	})
}

// OrgsByDomain returns the ids of the organizations that registered the
// email domain (lower case).
func (s *SQL) OrgsByDomain(ctx context.Context, domain string) ([]string, error) {
	ids := []string{}
	if !storable(domain) {
		return ids, nil
	}
	if err := s.selectAll(ctx, s.reader, &ids, `SELECT org_id FROM registered_domains WHERE domain = ? ORDER BY org_id`, strings.ToLower(domain)); err != nil {
		return nil, fmt.Errorf("store: organizations of a domain: %w", err)
	}
	return ids, nil
}
