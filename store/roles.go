package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
)

// The role rule of SCIM-managed administrators (see Administrator), as SQL
// over a row of administrators: it is in its organization's designated
// group, and the role it gets.
const (
	inSuperAdminGroup = `EXISTS (SELECT 1 FROM group_members sm JOIN groups sg ON sg.id = sm.group_id JOIN orgs so ON so.id = sg.org_id
		WHERE sm.administrator_id = administrators.id AND sg.org_id = administrators.org_id
		AND so.super_admin_group <> '' AND sg.display_name = so.super_admin_group)`
	scimManagedRole = `CASE WHEN scim_role = '` + string(RoleSuperAdministrator) + `' OR ` + inSuperAdminGroup +
		` THEN '` + string(RoleSuperAdministrator) + `' ELSE '` + string(RoleAdministrator) + `' END`
)

// scimManagedRoleOf is the rule in Go, for a write that computes the role
// before it stores the row.
func scimManagedRoleOf(scimRole Role, inSuperGroup bool) Role {
	if scimRole == RoleSuperAdministrator || inSuperGroup {
		return RoleSuperAdministrator
	}
	return RoleAdministrator
}

// inSuperGroup reports whether the administrator is a member of its
// organization's designated group. Called after the administrator's row is
// locked, so a concurrent member change or designation either committed
// before (and is seen) or recomputes the role after this write.
func (s *SQL) inSuperGroup(ctx context.Context, tx *sqlx.Tx, org, id string) (bool, error) {
	var in bool
	err := s.get(ctx, tx, &in, `SELECT `+inSuperAdminGroup+` FROM administrators WHERE id = ? AND org_id = ?`, id, org)
	return in, err
}

// syncRoles recomputes the role of the SCIM-managed administrators of org
// among ids. Rows are locked in id order (PostgreSQL), so two syncs over
// overlapping ids cannot deadlock each other.
func (s *SQL) syncRoles(ctx context.Context, tx *sqlx.Tx, org string, ids []string) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for _, chunk := range chunks(slices.Compact(ids), memberChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if err := s.syncRolesWhere(ctx, tx, org, `id IN `+placeholders(1, len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// syncRolesWhere recomputes the role of the SCIM-managed administrators of
// org that match cond (SQL over administrators), bumping the version of
// those whose role changes.
func (s *SQL) syncRolesWhere(ctx context.Context, tx *sqlx.Tx, org, cond string, args ...any) error {
	all := append([]any{s.timestamp(), org}, args...)
	var changed []struct {
		ID       string `db:"id"`
		UserName string `db:"username"`
		Role     Role   `db:"role"`
	}
	err := sqlx.SelectContext(ctx, tx, &changed, s.q(`UPDATE administrators SET role = `+scimManagedRole+`, version = version + 1,
		updated_at = ? WHERE org_id = ? AND scim_managed AND `+cond+` AND role <> `+scimManagedRole+` RETURNING id, username, role`), all...)
	if err != nil {
		return fmt.Errorf("store: recompute roles: %w", err)
	}
	if len(changed) > 0 {
		if err := s.changed(ctx, tx, org); err != nil {
			return err
		}
	}
	actor := ActorFrom(ctx)
	entries := make([]pendingAudit, len(changed))
	for i, c := range changed {
		old := RoleAdministrator
		if c.Role == RoleAdministrator {
			old = RoleSuperAdministrator
		}
		entries[i] = pendingAudit{actor: actor, org: org, change: change{action: AuditAdministratorUpdate, targetKind: "administrator",
			targetID: c.ID, targetName: c.UserName, before: map[string]any{"role": string(old)}, after: map[string]any{"role": string(c.Role)}}}
	}
	return s.auditAll(ctx, tx, entries)
}

// syncGroupRoles recomputes the roles of the members of one group.
func (s *SQL) syncGroupRoles(ctx context.Context, tx *sqlx.Tx, org, group string) error {
	return s.syncRolesWhere(ctx, tx, org, `id IN (SELECT administrator_id FROM group_members WHERE group_id = ?)`, group)
}
