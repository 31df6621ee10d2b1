package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// The role rule of SCIM-managed administrators (see Administrator), in SQL
// over a row of administrators: the rule must be SQL, because a change of
// the designated group's members, name or designation recomputes the roles
// of many rows in one statement. It is written once, here; Go code never
// computes it (a new administrator is in no group: its role is its SCIM
// role, see newAdministrator).
//
// The membership test is a scalar subquery, not EXISTS: PostgreSQL may
// run an EXISTS inside an expression as a hashed subplan (it did while the
// tables' statistics were stale), which reads every member of the
// designated group to build its table (10,000 rows to add one member). A scalar subquery always runs per row, through the index on
// group_members (administrator_id, group_id): it reads the few memberships
// of the administrator it is computed for.
const inSuperAdminGroup = `(SELECT COUNT(*) FROM group_members sm JOIN groups sg ON sg.id = sm.group_id JOIN orgs so ON so.id = sg.org_id
	WHERE sm.administrator_id = administrators.id AND sg.org_id = administrators.org_id
	AND so.super_admin_group <> '' AND sg.display_name = so.super_admin_group) > 0`

// managedRole is the role of a SCIM-managed administrator whose SCIM role
// is the SQL expression scimRole: the stored column, or a parameter when an
// UPDATE sets the column in the same statement (SET reads the old row).
func managedRole(scimRole string) string {
	return `CASE WHEN ` + scimRole + ` = '` + string(RoleSuperAdministrator) + `' OR ` + inSuperAdminGroup +
		` THEN '` + string(RoleSuperAdministrator) + `' ELSE '` + string(RoleAdministrator) + `' END`
}

// syncRolesSQL is the statement of recomputeRolesWhere. The rule is computed
// once per SCIM-managed administrator of the organization (the first
// parameter) that matches cond, in a materialized CTE (else both databases
// fold it into the UPDATE and compute it twice, for the SET and for the
// WHERE), and only the rows whose role it changes are written. The time
// of the change is the last parameter.
func syncRolesSQL(cond string) string {
	return `WITH r AS MATERIALIZED (
		SELECT id, ` + managedRole("scim_role") + ` AS role FROM administrators WHERE org_id = ? AND scim_managed AND ` + cond + `
	)
	UPDATE administrators SET role = r.role, version = administrators.version + 1, updated_at = ?
	FROM r WHERE administrators.id = r.id AND administrators.role <> r.role
	RETURNING administrators.id, administrators.username, administrators.role, administrators.status`
}

// superCounts is the SQL condition of an administrator that counts as one
// of its organization's Super Administrators: Pending ones count, an
// invited owner is the organization's only one until they finish.
const superCounts = `role = '` + string(RoleSuperAdministrator) + `' AND status IN ('` + string(StatusPending) + `', '` + string(StatusActive) + `')`

// countsAsSuper is superCounts for a record in hand.
func countsAsSuper(a *Administrator) bool {
	return a.Role == RoleSuperAdministrator && (a.Status == StatusActive || a.Status == StatusPending)
}

// settleSuper runs after a write that removed (lost) or added a Super
// Administrator of org (see SuperRule): an organization left without one
// is refused the write (KeepSuper) or flagged (FlagMissingSuper); a
// flagged one that has one again is cleared. Both are audited.
//
// It first takes the organization's super lock (PostgreSQL: a transaction
// advisory lock; SQLite writers are serialized), so the count that follows
// sees every concurrent write that settled before it, and two demotions of
// the last two cannot both see the other still there. The lock and the
// flag's row are taken by nothing else, after nothing else is waited for,
// so they add no lock cycle to the writes that call this.
func (s *SQL) settleSuper(ctx context.Context, tx *sqlx.Tx, org string, rule SuperRule, lost bool) error {
	if s.d.name == "postgres" {
		if _, err := s.exec(ctx, tx, `SELECT pg_advisory_xact_lock(hashtextextended('gatehouse.super:' || ?, 0))`, org); err != nil {
			return fmt.Errorf("store: super lock: %w", err)
		}
	}
	var since []time.Time
	if err := sqlx.SelectContext(ctx, tx, &since, s.q(`SELECT since FROM super_admin_missing WHERE org_id = ?`), org); err != nil {
		return unavailable(fmt.Errorf("store: super flag: %w", err))
	}
	flagged := len(since) > 0
	if !lost && !flagged {
		return nil // a Super Administrator more, none missing
	}
	var has bool
	if err := s.get(ctx, tx, &has, `SELECT EXISTS (SELECT 1 FROM administrators WHERE org_id = ? AND `+superCounts+`)`, org); err != nil {
		return err
	}
	switch {
	case !has && rule == KeepSuper:
		return ErrLastSuperAdministrator
	case !has && !flagged:
		now := s.timestamp()
		if _, err := s.exec(ctx, tx, `INSERT INTO super_admin_missing (org_id, since) VALUES (?, ?)`, org, now); err != nil {
			return fmt.Errorf("store: flag organization: %w", err)
		}
		return s.audit(ctx, tx, org, change{action: AuditOrgSuperAdminMissing, targetKind: "organization", targetID: org,
			after: map[string]any{"superAdministratorMissingSince": now}})
	case has && flagged:
		if _, err := s.exec(ctx, tx, `DELETE FROM super_admin_missing WHERE org_id = ?`, org); err != nil {
			return fmt.Errorf("store: clear organization flag: %w", err)
		}
		return s.audit(ctx, tx, org, change{action: AuditOrgSuperAdminRestored, targetKind: "organization", targetID: org,
			before: map[string]any{"superAdministratorMissingSince": since[0]}})
	}
	return nil
}

// roleChanges collects what the role recomputes of one write changed, so
// that the write records them with its own: one count of the change, one
// audit write, one settling of the Super Administrator rule.
type roleChanges struct {
	entries []pendingAudit
	settle  bool // a Super Administrator came or went
	lost    bool // one went
}

// recomputeRoles recomputes the role of the SCIM-managed administrators of
// org among ids (see recomputeRolesWhere). Rows are locked in id order
// (PostgreSQL), so two recomputes over overlapping ids cannot deadlock
// each other.
func (s *SQL) recomputeRoles(ctx context.Context, tx *sqlx.Tx, org string, ids []string, r *roleChanges) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for _, chunk := range chunks(slices.Compact(ids), memberChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if err := s.recomputeRolesWhere(ctx, tx, org, r, `id IN `+placeholders(1, len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// recomputeRolesWhere recomputes the role of the SCIM-managed
// administrators of org that match cond (SQL over administrators), bumping
// the version of those whose role changes, and adds the changes to r.
func (s *SQL) recomputeRolesWhere(ctx context.Context, tx *sqlx.Tx, org string, r *roleChanges, cond string, args ...any) error {
	all := append(append([]any{org}, args...), s.timestamp())
	var changed []struct {
		ID       string `db:"id"`
		UserName string `db:"username"`
		Role     Role   `db:"role"`
		Status   Status `db:"status"`
	}
	if err := sqlx.SelectContext(ctx, tx, &changed, s.q(syncRolesSQL(cond)), all...); err != nil {
		return fmt.Errorf("store: recompute roles: %w", err)
	}
	actor, err := actorOf(ctx)
	if err != nil {
		return err
	}
	for _, c := range changed {
		if c.Status != StatusDeactivated { // it counted or counts now
			r.settle = true
			r.lost = r.lost || c.Role == RoleAdministrator
		}
		old := RoleAdministrator
		if c.Role == RoleAdministrator {
			old = RoleSuperAdministrator
		}
		r.entries = append(r.entries, pendingAudit{actor: actor, org: org, change: change{action: AuditAdministratorUpdate,
			targetKind: "administrator", targetID: c.ID, targetName: c.UserName, before: map[string]any{"role": string(old)},
			after: map[string]any{"role": string(c.Role)}}})
	}
	return nil
}

// recordRoles records r inside the write that made it: a change of the
// organization's records unless the write counted one already (counted),
// the audit entries after the write's own (first), and the Super
// Administrator rule. The designated group is the IdP's: a change that
// leaves the organization without a Super Administrator flags it
// (FlagMissingSuper).
func (s *SQL) recordRoles(ctx context.Context, tx *sqlx.Tx, org string, r roleChanges, counted bool, first ...pendingAudit) error {
	if len(r.entries) > 0 && !counted {
		if err := s.changed(ctx, tx, org); err != nil {
			return err
		}
	}
	if err := s.auditAll(ctx, tx, append(first, r.entries...)); err != nil {
		return err
	}
	if r.settle {
		return s.settleSuper(ctx, tx, org, FlagMissingSuper, r.lost)
	}
	return nil
}

// syncRoles recomputes and records the roles of the SCIM-managed
// administrators of org among ids, for a write that changed nothing else
// of them.
func (s *SQL) syncRoles(ctx context.Context, tx *sqlx.Tx, org string, ids []string) error {
	var r roleChanges
	if err := s.recomputeRoles(ctx, tx, org, ids, &r); err != nil {
		return err
	}
	return s.recordRoles(ctx, tx, org, r, false)
}

// syncRolesWhere is syncRoles over the administrators that match cond.
func (s *SQL) syncRolesWhere(ctx context.Context, tx *sqlx.Tx, org, cond string, args ...any) error {
	var r roleChanges
	if err := s.recomputeRolesWhere(ctx, tx, org, &r, cond, args...); err != nil {
		return err
	}
	return s.recordRoles(ctx, tx, org, r, false)
}
