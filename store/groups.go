package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const groupColumns = `id, org_id, display_name, external_id, created_at, updated_at, version, attributes`

// CreateGroup inserts a group with no members.
func (s *SQL) CreateGroup(ctx context.Context, g Group) (Group, error) {
	if g.OrgID == "" || g.DisplayName == "" {
		return Group{}, errors.New("store: group needs an organization and a display name")
	}
	if g.ID == "" {
		g.ID = uuid.NewString()
	}
	now := s.timestamp()
	g.CreatedAt, g.UpdatedAt, g.Version = now, now, 1
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO groups (id, org_id, display_name, external_id, created_at, updated_at, version, attributes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.OrgID, g.DisplayName, g.ExternalID, g.CreatedAt, g.UpdatedAt, g.Version, g.Attributes)
		if err != nil {
			return err
		}
		return s.addCount(ctx, tx, g.OrgID, countGroups, 1)
	})
	switch {
	case s.d.uniqueViolation(err):
		return Group{}, &ExistsError{Kind: "group", Field: "id", Existing: g.ID}
	case s.d.foreignKeyViolation(err):
		return Group{}, ErrNotFound
	case err != nil:
		return Group{}, fmt.Errorf("store: create group: %w", err)
	}
	return g, nil
}

// Group returns one group of org by id.
func (s *SQL) Group(ctx context.Context, org, id string) (Group, error) {
	var g Group
	err := s.get(ctx, s.reader, &g, `SELECT `+groupColumns+` FROM groups WHERE id = ? AND org_id = ?`, id, org)
	return g, err
}

// UpdateGroup applies fn to the group's own fields (not its members).
func (s *SQL) UpdateGroup(ctx context.Context, org, id string, fn func(*Group) error) (Group, error) {
	return updateRecord(ctx, s, `SELECT `+groupColumns+` FROM groups WHERE id = ? AND org_id = ?`, []any{id, org}, fn,
		func(before, after *Group) {
			after.ID, after.OrgID, after.CreatedAt = before.ID, before.OrgID, before.CreatedAt
			after.Version, after.UpdatedAt = before.Version+1, s.timestamp()
		},
		func(tx *sqlx.Tx, g *Group) (int64, error) {
			if g.DisplayName == "" {
				return 0, errors.New("store: group needs a display name")
			}
			return s.exec(ctx, tx, `UPDATE groups SET display_name = ?, external_id = ?, updated_at = ?, version = ?, attributes = ?
				WHERE id = ? AND org_id = ? AND version = ?`,
				g.DisplayName, g.ExternalID, g.UpdatedAt, g.Version, g.Attributes, g.ID, g.OrgID, g.Version-1)
		})
}

// countGroups is the record_counts kind of groups.
const countGroups = "groups"

// DeleteGroup removes the group and its member rows.
func (s *SQL) DeleteGroup(ctx context.Context, org, id string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM groups WHERE id = ? AND org_id = ?`, id, org)
		if err != nil {
			return fmt.Errorf("store: delete group: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		return s.addCount(ctx, tx, org, countGroups, -1)
	})
}

// ListGroups returns a page of groups in creation order and the total.
func (s *SQL) ListGroups(ctx context.Context, org string, p Page) ([]Group, int, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, err
	}
	total, err := s.count(ctx, org, countGroups)
	if err != nil {
		return nil, 0, err
	}
	gs := []Group{}
	if p.Limit == 0 || p.Offset >= total {
		return gs, total, nil
	}
	err = s.selectAll(ctx, s.reader, &gs, `SELECT `+groupColumns+` FROM groups WHERE org_id = ? ORDER BY seq LIMIT ? OFFSET ?`,
		org, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list groups: %w", err)
	}
	return gs, total, nil
}

// lockGroup checks that the group belongs to org and, on PostgreSQL, locks
// its row so concurrent member changes of one group take turns (their
// version bumps must not interleave).
func (s *SQL) lockGroup(ctx context.Context, tx *sqlx.Tx, org, group string) error {
	var id string
	return s.get(ctx, tx, &id, `SELECT id FROM groups WHERE id = ? AND org_id = ?`+s.d.forUpdate, group, org)
}

func (s *SQL) bumpGroup(ctx context.Context, tx *sqlx.Tx, group string) error {
	_, err := s.exec(ctx, tx, `UPDATE groups SET version = version + 1, updated_at = ? WHERE id = ?`, s.timestamp(), group)
	return err
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

// AddGroupMembers adds administrators of org to the group. Every statement
// touches only the rows named, so the cost does not grow with the group.
func (s *SQL) AddGroupMembers(ctx context.Context, org, group string, ids []string) (int, error) {
	ids = dedupe(ids)
	added := 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		added = 0
		if err := s.lockGroup(ctx, tx, org, group); err != nil {
			return err
		}
		for _, chunk := range chunks(ids, memberChunk) {
			args := make([]any, 0, len(chunk)+1)
			args = append(args, org)
			for _, id := range chunk {
				args = append(args, id)
			}
			var found int
			err := tx.GetContext(ctx, &found, tx.Rebind(`SELECT count(*) FROM administrators WHERE org_id = ? AND id IN `+placeholders(1, len(chunk))), args...)
			if err != nil {
				return fmt.Errorf("store: add members: %w", err)
			}
			if found != len(chunk) {
				return fmt.Errorf("store: a member is not an administrator of the organization: %w", ErrNotFound)
			}
			args = args[:0]
			for _, id := range chunk {
				args = append(args, group, id)
			}
			n, err := s.exec(ctx, tx, `INSERT INTO group_members (group_id, administrator_id) VALUES `+placeholders(len(chunk), 2)+`
				ON CONFLICT (group_id, administrator_id) DO NOTHING`, args...)
			if err != nil {
				return fmt.Errorf("store: add members: %w", err)
			}
			added += int(n)
		}
		if added > 0 {
			return s.bumpGroup(ctx, tx, group)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

// RemoveGroupMembers removes the named members; absent ones are ignored.
func (s *SQL) RemoveGroupMembers(ctx context.Context, org, group string, ids []string) (int, error) {
	ids = dedupe(ids)
	removed := 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		removed = 0
		if err := s.lockGroup(ctx, tx, org, group); err != nil {
			return err
		}
		for _, chunk := range chunks(ids, memberChunk) {
			args := make([]any, 0, len(chunk)+1)
			args = append(args, group)
			for _, id := range chunk {
				args = append(args, id)
			}
			n, err := s.exec(ctx, tx, `DELETE FROM group_members WHERE group_id = ? AND administrator_id IN `+placeholders(1, len(chunk)), args...)
			if err != nil {
				return fmt.Errorf("store: remove members: %w", err)
			}
			removed += int(n)
		}
		if removed > 0 {
			return s.bumpGroup(ctx, tx, group)
		}
		return nil
	})
	if err != nil {
		return 0, err
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

// AdministratorGroups lists the groups an administrator belongs to, in the
// groups' creation order.
func (s *SQL) AdministratorGroups(ctx context.Context, org, administrator string) ([]Group, error) {
	gs := []Group{}
	err := s.selectAll(ctx, s.reader, &gs, `SELECT g.id, g.org_id, g.display_name, g.external_id, g.created_at, g.updated_at,
		g.version, g.attributes FROM group_members m JOIN groups g ON g.id = m.group_id
		WHERE m.administrator_id = ? AND g.org_id = ? ORDER BY g.seq`, administrator, org)
	if err != nil {
		return nil, fmt.Errorf("store: groups of administrator: %w", err)
	}
	return gs, nil
}
