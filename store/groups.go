package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const groupColumns = `id, org_id, display_name, external_id, created_at, updated_at, version, attributes`

// validGroup checks what both databases can store and query.
func validGroup(g *Group) error {
	switch {
	case g.DisplayName == "":
		return errors.New("store: group needs a display name")
	case !storable(g.DisplayName) || !storable(g.ExternalID):
		return errors.New("store: group name is not valid UTF-8 text")
	}
	return queryableJSON(g.Attributes)
}

// CreateGroup inserts a group and its members (administrator ids of the
// organization) in one transaction: a refused member leaves no group. A
// group that takes the designated name recomputes its members' roles in
// the same transaction.
func (s *SQL) CreateGroup(ctx context.Context, g Group, members ...string) (Group, error) {
	if g.OrgID == "" {
		return Group{}, errors.New("store: group needs an organization")
	}
	if err := validGroup(&g); err != nil {
		return Group{}, err
	}
	if g.ID == "" {
		g.ID = uuid.NewString()
	}
	now := s.timestamp()
	g.CreatedAt, g.UpdatedAt, g.Version = now, now, 1
	add := dedupe(members)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// Share-locks the organization as lockGroup does: a change of the
		// designation waits for this group's members, or they see it.
		var designated string
		if err := s.get(ctx, tx, &designated, `SELECT super_admin_group FROM orgs WHERE id = ?`+s.d.lockOrg, g.OrgID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO groups (id, org_id, display_name, display_name_fold, external_id, created_at, updated_at,
			version, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.OrgID, g.DisplayName, Fold(g.DisplayName), g.ExternalID, g.CreatedAt, g.UpdatedAt, g.Version, g.Attributes)
		if err != nil {
			return err
		}
		if err := s.audit(ctx, tx, g.OrgID, change{action: AuditGroupCreate, targetKind: "group", targetID: g.ID,
			targetName: g.DisplayName, after: groupView(&g)}); err != nil {
			return err
		}
		if err := s.addCount(ctx, tx, g.OrgID, countGroups, 1); err != nil {
			return err
		}
		n, err := s.addMembers(ctx, tx, g.OrgID, g.ID, add)
		if err != nil || n == 0 {
			return err
		}
		var roles roleChanges
		if designated != "" && g.DisplayName == designated {
			if err := s.recomputeRoles(ctx, tx, g.OrgID, add, &roles); err != nil {
				return err
			}
		}
		return s.recordRoles(ctx, tx, g.OrgID, roles, false, groupPatchEntries(ctx, &g, &g, GroupPatch{}, add, memberCounts{added: n})...)
	})
	if err := s.createError(err, &ExistsError{Kind: "group", Field: "id", Existing: g.ID}, "group"); err != nil {
		return Group{}, err
	}
	return g, nil
}

// Group returns one group of org by id.
func (s *SQL) Group(ctx context.Context, org, id string) (Group, error) {
	var g Group
	err := s.get(ctx, s.reader, &g, `SELECT `+groupColumns+` FROM groups WHERE id = ? AND org_id = ?`, id, org)
	return g, err
}

// countGroups is the record_counts kind of groups.
const countGroups = "groups"

// lockedGroup is a group read at the start of a change, with its
// organization's designated group name. On PostgreSQL the read locks the
// group row (concurrent changes of one group take turns, so their version
// bumps cannot interleave) and share-locks the organization row: a change
// of the designation waits for the member changes in flight, and they for
// it, so neither recomputes roles from a stale view of the other.
type lockedGroup struct {
	Group
	Designated string `db:"super_admin_group"`
}

func (s *SQL) lockGroup(ctx context.Context, tx *sqlx.Tx, org, id string) (lockedGroup, error) {
	var g lockedGroup
	err := s.get(ctx, tx, &g, `SELECT g.id, g.org_id, g.display_name, g.external_id, g.created_at, g.updated_at, g.version,
		g.attributes, o.super_admin_group FROM groups g JOIN orgs o ON o.id = g.org_id WHERE g.id = ? AND g.org_id = ?`+s.d.lockGroup, id, org)
	return g, err
}

// designates reports whether name is the designated group's.
func (g lockedGroup) designates(name string) bool { return g.Designated != "" && name == g.Designated }

// DeleteGroup removes the group and its member rows (see Store). Deleting
// the designated group recomputes the roles of its former members.
func (s *SQL) DeleteGroup(ctx context.Context, org, id string, check func(Group) error) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		g, err := s.lockGroup(ctx, tx, org, id)
		if err != nil {
			return err
		}
		// Checked on the locked row, in the transaction that deletes it: a
		// write that committed after the caller read its version is seen.
		if check != nil {
			if err := check(g.Group); err != nil {
				return err
			}
		}
		var members []string
		if g.designates(g.DisplayName) {
			if err := sqlx.SelectContext(ctx, tx, &members, s.q(`SELECT administrator_id FROM group_members WHERE group_id = ?`), id); err != nil {
				return fmt.Errorf("store: delete group: %w", err)
			}
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM groups WHERE id = ? AND org_id = ?`, id, org); err != nil {
			return fmt.Errorf("store: delete group: %w", err)
		}
		if err := s.audit(ctx, tx, org, change{action: AuditGroupDelete, targetKind: "group", targetID: id,
			targetName: g.DisplayName, before: groupView(&g.Group)}); err != nil {
			return err
		}
		if err := s.addCount(ctx, tx, org, countGroups, -1); err != nil {
			return err
		}
		return s.syncRoles(ctx, tx, org, members) // last: it may take the super lock (settleSuper)
	})
}

func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// memberChunk bounds the rows one statement touches: two parameters a row
// stays well under SQLite's and PostgreSQL's parameter limits.
const memberChunk = 500

// memberCounts is how many member rows a patch added and removed.
type memberCounts struct{ added, removed int }

// PatchGroup applies p to the group in one transaction (see Store).
// Every statement touches only the member rows named, so the cost does not
// grow with the group.
func (s *SQL) PatchGroup(ctx context.Context, org, id string, p GroupPatch) (Group, error) {
	add := dedupe(p.Add)
	var out Group
	var n memberCounts
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		n = memberCounts{}
		cur, err := s.lockGroup(ctx, tx, org, id)
		if err != nil {
			return err
		}
		g := cur.Group
		if p.Update != nil {
			if err := p.Update(&g); err != nil {
				return err
			}
			g.ID, g.OrgID, g.CreatedAt, g.Version, g.UpdatedAt = cur.ID, cur.OrgID, cur.CreatedAt, cur.Version, cur.UpdatedAt
			if err := validGroup(&g); err != nil {
				return err
			}
		}
		// Roles change when members of the designated group change, and for
		// every member when the group takes or gives up the designated name.
		designated := cur.designates(cur.DisplayName) || cur.designates(g.DisplayName)
		renamed := designated && g.DisplayName != cur.DisplayName
		var resync []string // administrators whose role may change: the members removed or added
		if p.RemoveAll {
			if designated {
				err = sqlx.SelectContext(ctx, tx, &resync, s.q(`DELETE FROM group_members WHERE group_id = ? RETURNING administrator_id`), id)
				n.removed = len(resync)
			} else {
				var k int64
				k, err = s.exec(ctx, tx, `DELETE FROM group_members WHERE group_id = ?`, id)
				n.removed = int(k)
			}
			if err != nil {
				return fmt.Errorf("store: remove members: %w", err)
			}
		}
		if len(p.Remove) > 0 && !p.RemoveAll {
			k, err := s.removeMembers(ctx, tx, id, p.Remove)
			if err != nil {
				return err
			}
			n.removed += k
		}
		if n.added, err = s.addMembers(ctx, tx, org, id, add); err != nil {
			return err
		}
		fields := g.DisplayName != cur.DisplayName || g.ExternalID != cur.ExternalID || !bytes.Equal(g.Attributes, cur.Attributes)
		var entries []pendingAudit
		counted := fields || n.added+n.removed > 0
		if counted {
			g.Version, g.UpdatedAt = cur.Version+1, s.timestamp()
			q, args, folded := s.changing(tx, org, `UPDATE groups SET display_name = ?, display_name_fold = ?, external_id = ?, attributes = ?,
				version = ?, updated_at = ? WHERE id = ?`, g.DisplayName, Fold(g.DisplayName), g.ExternalID, g.Attributes, g.Version, g.UpdatedAt, id)
			if _, err := s.exec(ctx, tx, q, args...); err != nil {
				return fmt.Errorf("store: update group: %w", err)
			}
			if !folded {
				if err := s.changed(ctx, tx, org); err != nil {
					return err
				}
			}
			entries = groupPatchEntries(ctx, &cur.Group, &g, p, add, n)
		}
		// The roles are recomputed after the group's row is written (a
		// rename), and recorded with the group's change: one count, one
		// audit write.
		var roles roleChanges
		if designated {
			resync = append(resync, p.Remove...)
			if renamed {
				err := s.recomputeRolesWhere(ctx, tx, org, &roles, `id IN (SELECT administrator_id FROM group_members WHERE group_id = ?)`, id)
				if err != nil {
					return err
				}
			} else {
				resync = append(resync, add...)
			}
			if err := s.recomputeRoles(ctx, tx, org, resync, &roles); err != nil {
				return err
			}
		}
		if err := s.recordRoles(ctx, tx, org, roles, counted, entries...); err != nil {
			return err
		}
		out = g
		return nil
	})
	if err != nil {
		return Group{}, err
	}
	return out, nil
}

// groupPatchEntries are the audit entries of a group's changed fields and its member
// changes (the ids asked for, so the entry's size follows the request,
// not the group).
func groupPatchEntries(ctx context.Context, before, after *Group, p GroupPatch, add []string, n memberCounts) []pendingAudit {
	entries := []pendingAudit{}
	actor, _ := ActorFrom(ctx) // none: auditAll refuses the entries (ErrNoActor)
	if b, a := groupView(before), groupView(after); !reflect.DeepEqual(b, a) {
		entries = append(entries, pendingAudit{actor: actor, org: after.OrgID, change: change{action: AuditGroupUpdate,
			targetKind: "group", targetID: after.ID, targetName: after.DisplayName, before: b, after: a}})
	}
	if n.added+n.removed > 0 {
		members := map[string]any{"added": n.added, "removed": n.removed}
		if p.RemoveAll {
			members["removedAll"] = true
		} else if len(p.Remove) > 0 {
			members["removedIds"] = p.Remove
		}
		if len(add) > 0 {
			members["addedIds"] = add
		}
		entries = append(entries, pendingAudit{actor: actor, org: after.OrgID, change: change{action: AuditGroupMembers,
			targetKind: "group", targetID: after.ID, targetName: after.DisplayName, after: members}})
	}
	return entries
}

// addMembers inserts member rows for ids (distinct), all administrators of
// org or none: an id that is not one is ErrNotFound.
func (s *SQL) addMembers(ctx context.Context, tx *sqlx.Tx, org, group string, ids []string) (int, error) {
	added := 0
	for _, chunk := range chunks(ids, memberChunk) {
		args := make([]any, 0, 2*len(chunk))
		args = append(args, org)
		for _, id := range chunk {
			args = append(args, id)
		}
		var found int
		if err := s.get(ctx, tx, &found, `SELECT count(*) FROM administrators WHERE org_id = ? AND id IN `+placeholders(1, len(chunk)), args...); err != nil {
			return 0, fmt.Errorf("store: add members: %w", err)
		}
		if found != len(chunk) {
			return 0, ErrUnknownMember
		}
		args = args[:0]
		for _, id := range chunk {
			args = append(args, group, id)
		}
		n, err := s.exec(ctx, tx, `INSERT INTO group_members (group_id, administrator_id) VALUES `+placeholders(len(chunk), 2)+`
			ON CONFLICT (group_id, administrator_id) DO NOTHING`, args...)
		if s.d.foreignKeyViolation(err) {
			// Deleted by a transaction that committed after the count.
			return 0, ErrUnknownMember
		}
		if err != nil {
			return 0, fmt.Errorf("store: add members: %w", err)
		}
		added += int(n)
	}
	return added, nil
}

// removeMembers deletes the member rows of ids; absent ones are ignored.
func (s *SQL) removeMembers(ctx context.Context, tx *sqlx.Tx, group string, ids []string) (int, error) {
	removed := 0
	for _, chunk := range chunks(dedupe(ids), memberChunk) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, group)
		for _, id := range chunk {
			args = append(args, id)
		}
		n, err := s.exec(ctx, tx, `DELETE FROM group_members WHERE group_id = ? AND administrator_id IN `+placeholders(1, len(chunk)), args...)
		if err != nil {
			return 0, fmt.Errorf("store: remove members: %w", err)
		}
		removed += int(n)
	}
	return removed, nil
}

// GroupMembers returns a page of the group's members in the order they were
// added, and their total.
func (s *SQL) GroupMembers(ctx context.Context, org, group string, p Page) ([]GroupMember, int, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, err
	}
	if _, err := s.Group(ctx, org, group); err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.get(ctx, s.reader, &total, `SELECT count(*) FROM group_members WHERE group_id = ?`, group); err != nil {
		return nil, 0, err
	}
	ms := []GroupMember{}
	if p.Limit == 0 || p.Offset >= total {
		return ms, total, nil
	}
	err := s.selectAll(ctx, s.reader, &ms, `SELECT m.administrator_id, a.username FROM group_members m
		JOIN administrators a ON a.id = m.administrator_id
		WHERE m.group_id = ? ORDER BY m.seq LIMIT ? OFFSET ?`, group, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list members: %w", err)
	}
	return ms, total, nil
}
