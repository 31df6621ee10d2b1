package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const administratorColumns = `id, org_id, username, external_id, given_name, family_name, email, emails, phone, role, status,
	scim_managed, scim_role, created_at, updated_at, last_login_at, version, attributes, language`

// row is what rows.Scan reads from: one *sql.Row or the current row of
// *sql.Rows.
type row interface{ Scan(dest ...any) error }

// scanAdministrator reads administratorColumns, in their order, then the
// row's further columns into extra. The read paths scan by hand: sqlx's
// reflection cost more per row than SQLite took to find it.
func scanAdministrator(r row, extra ...any) (Administrator, error) {
	var a Administrator
	var role, status, scimRole string
	dest := append(make([]any, 0, 19+len(extra)), &a.ID, &a.OrgID, &a.UserName, &a.ExternalID, &a.GivenName, &a.FamilyName,
		&a.Email, &a.Emails, &a.Phone, &role, &status, &a.SCIMManaged, &scimRole, &a.CreatedAt, &a.UpdatedAt, &a.LastLoginAt,
		&a.Version, &a.Attributes, &a.Language)
	err := r.Scan(append(dest, extra...)...)
	a.Role, a.Status, a.SCIMRole = Role(role), Status(status), Role(scimRole)
	return a, err
}

// readAdministrator runs a query of one administrator on the reader, with
// extra as in scanAdministrator; no row is ErrNotFound.
func (s *SQL) readAdministrator(ctx context.Context, query string, args []any, extra ...any) (Administrator, error) {
	st, err := s.stmt(ctx, s.reader, query)
	if err != nil {
		return Administrator{}, fmt.Errorf("store: %w", err)
	}
	a, err := scanAdministrator(st.QueryRowContext(ctx, args...), extra...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Administrator{}, ErrNotFound
	case err != nil:
		return Administrator{}, unavailable(fmt.Errorf("store: %w", err))
	}
	return a, nil
}

// errUsernameTaken is what an insert or update reports inside its
// transaction; once the transaction is over it becomes an *ExistsError
// naming the stored username (PostgreSQL cannot query an aborted transaction).
type errUsernameTaken struct{ org, fold, fallback string }

func (e errUsernameTaken) Error() string { return "store: username taken" }

func (s *SQL) nameTaken(ctx context.Context, err error) error {
	var t errUsernameTaken
	if !errors.As(err, &t) {
		return err
	}
	var existing string
	if s.get(ctx, s.reader, &existing, `SELECT username FROM administrators WHERE org_id = ? AND username_fold = ?`, t.org, t.fold) != nil {
		// The clash was with a row of the same failed batch, or on the id.
		existing = t.fallback
	}
	return &ExistsError{Kind: "administrator", Field: "userName", Existing: existing}
}

// storable reports whether both databases can store s as text: valid UTF-8
// without NUL (PostgreSQL refuses both).
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func validAdministrator(a *Administrator) error {
	switch {
	case a.OrgID == "":
		return errors.New("store: administrator without organization")
	case a.UserName == "":
		return errors.New("store: administrator without username")
	case !storable(a.UserName):
		return errors.New("store: username is not valid UTF-8 text")
	case !a.Role.Valid():
		return fmt.Errorf("store: invalid role %q", a.Role)
	case a.SCIMRole != "" && !a.SCIMRole.Valid():
		return fmt.Errorf("store: invalid SCIM role %q", a.SCIMRole)
	case !a.Status.Valid():
		return fmt.Errorf("store: invalid status %q", a.Status)
	case len(a.Language) > 16 || !storable(a.Language):
		return fmt.Errorf("store: invalid language %q", a.Language)
	}
	if err := validEmails(a.Emails); err != nil {
		return err
	}
	return queryableJSON(a.Attributes)
}

// newAdministrator readies a for its insert: the role of a SCIM-managed
// administrator, the id, times and version. A new administrator is in no
// group yet, so the role rule (managedRole) gives its SCIM role.
func newAdministrator(a *Administrator, now time.Time) error {
	if a.SCIMManaged {
		a.Role = RoleAdministrator
		if a.SCIMRole == RoleSuperAdministrator {
			a.Role = RoleSuperAdministrator
		}
	}
	if err := validAdministrator(a); err != nil {
		return err
	}
	if a.ID == "" {
		// A version 7 UUID: 74 random bits after a millisecond timestamp,
		// so administrators created together sort together. Their inserts
		// into the id index and into administrator_emails (keyed by it)
		// then touch the same few pages instead of one random page each,
		// which is most of what a group commit writes to the WAL. The
		// creation time it shows is the one meta.created shows anyway.
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("store: new administrator id: %w", err)
		}
		a.ID = id.String()
	}
	a.CreatedAt, a.UpdatedAt, a.Version = now, now, 1
	a.LastLoginAt = micro(a.LastLoginAt)
	return nil
}

// insertAdministrator readies and inserts a and counts it, inside tx
// (see insertAdministrators).
func (s *SQL) insertAdministrator(ctx context.Context, tx *sqlx.Tx, a Administrator, now time.Time) (Administrator, error) {
	actor, err := actorOf(ctx)
	if err != nil {
		return a, err
	}
	row, err := newAdministratorRow(a, actor, now)
	if err != nil {
		return a, err
	}
	errs, err := s.insertAdministrators(ctx, tx, []newRow{row})
	if err != nil {
		return a, err
	}
	if errs[0] != nil {
		return a, errs[0]
	}
	a = row.a
	if countsAsSuper(&a) { // it may end the organization's flag
		return a, s.settleSuper(ctx, tx, a.OrgID, FlagMissingSuper, false)
	}
	return a, nil
}

// administratorCreated is the audit entry of a new administrator.
func administratorCreated(a *Administrator) change {
	return change{action: AuditAdministratorCreate, targetKind: "administrator", targetID: a.ID, targetName: a.UserName,
		after: administratorView(a)}
}

// countAdministrators is the record_counts kind of administrators.
const countAdministrators = "administrators"

const (
	administratorInsertColumns = `id, org_id, username, username_fold, external_id, given_name, family_name,
		email, emails, phone, role, status, scim_managed, scim_role, created_at, updated_at, last_login_at, version, attributes, language`
	administratorInsertArgs = 20
)

func administratorArgs(a *Administrator) []any {
	return []any{a.ID, a.OrgID, a.UserName, FoldUsername(a.UserName), a.ExternalID, a.GivenName, a.FamilyName,
		a.Email, a.Emails, a.Phone, string(a.Role), string(a.Status), a.SCIMManaged, string(a.SCIMRole), a.CreatedAt, a.UpdatedAt,
		a.LastLoginAt, a.Version, a.Attributes, a.Language}
}

// usernameTaken is the clash of a's username with a stored one.
func usernameTaken(a *Administrator) error {
	return errUsernameTaken{org: a.OrgID, fold: FoldUsername(a.UserName), fallback: a.UserName}
}

func (s *SQL) administratorWriteError(err error, a *Administrator) error {
	switch {
	case err == nil:
		return nil
	case s.d.uniqueViolation(err):
		return usernameTaken(a)
	case s.d.foreignKeyViolation(err):
		return ErrNotFound // the organization does not exist
	}
	return fmt.Errorf("store: write administrator: %w", err)
}

// CreateAdministrator inserts one administrator through the group commit
// (see createQueue).
func (s *SQL) CreateAdministrator(ctx context.Context, a Administrator) (Administrator, error) {
	// A Super Administrator may end its organization's flag (settleSuper),
	// which the group commit does not do: those are rare and go alone.
	super := a.Role == RoleSuperAdministrator || (a.SCIMManaged && a.SCIMRole == RoleSuperAdministrator)
	if s.creates != nil && !super {
		return s.creates.create(ctx, s, a)
	}
	out, err := s.createOne(ctx, a)
	if err != nil {
		return Administrator{}, s.nameTaken(ctx, err)
	}
	return out, nil
}

// createOne inserts one administrator in a transaction of its own.
func (s *SQL) createOne(ctx context.Context, a Administrator) (Administrator, error) {
	var out Administrator
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = s.insertAdministrator(ctx, tx, a, s.timestamp())
		return err
	})
	return out, err
}

// InviteAdministrator creates a, its invitation and the queued email in
// one transaction.
func (s *SQL) InviteAdministrator(ctx context.Context, a Administrator, inv Invitation, email *OutboxMessage) (Administrator, error) {
	var out Administrator
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		now := s.timestamp()
		var err error
		if out, err = s.insertAdministrator(ctx, tx, a, now); err != nil {
			return err
		}
		inv.OrgID, inv.AdministratorID, inv.Purpose = out.OrgID, out.ID, PurposeActivation
		if err := s.insertInvitation(ctx, tx, inv, out.UserName, now); err != nil {
			return err
		}
		if email != nil {
			return s.insertOutbox(ctx, tx, email)
		}
		return nil
	})
	if err != nil {
		return Administrator{}, s.nameTaken(ctx, err)
	}
	return out, nil
}

// CreateAdministrators inserts all of as in one transaction, or none
// (see insertAdministrators). It is not part of Store: only seeding
// (scimload, tests and benchmarks) inserts in bulk.
func (s *SQL) CreateAdministrators(ctx context.Context, as []Administrator) error {
	actor, err := actorOf(ctx)
	if err != nil {
		return err
	}
	now := s.timestamp()
	rows := make([]newRow, len(as))
	for i, a := range as {
		var err error
		if rows[i], err = newAdministratorRow(a, actor, now); err != nil {
			return err
		}
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, chunk := range chunks(rows, createChunk) {
			errs, err := s.insertAdministrators(ctx, tx, chunk)
			if err == nil {
				err = errors.Join(errs...)
			}
			var taken errUsernameTaken
			if errors.As(err, &taken) {
				return s.batchClash(ctx, as)
			}
			if err != nil {
				return err
			}
		}
		settled := map[string]bool{}
		for i := range rows {
			if a := &rows[i].a; countsAsSuper(a) && !settled[a.OrgID] {
				settled[a.OrgID] = true
				if err := s.settleSuper(ctx, tx, a.OrgID, FlagMissingSuper, false); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return s.nameTaken(ctx, err)
}

// createChunk bounds the rows of one insertAdministrators of
// CreateAdministrators (on PostgreSQL one statement, its arrays held in
// memory twice: by the driver and by the server).
const createChunk = 5000

// batchClash finds which username of a failed batch clashed: one already
// stored, or two of the batch that fold alike.
func (s *SQL) batchClash(ctx context.Context, rows []Administrator) error {
	seen := make(map[string]string, len(rows))
	for _, a := range rows {
		f := FoldUsername(a.UserName)
		if first, ok := seen[a.OrgID+"\x00"+f]; ok {
			return &ExistsError{Kind: "administrator", Field: "userName", Existing: first}
		}
		seen[a.OrgID+"\x00"+f] = a.UserName
	}
	for _, a := range rows {
		var existing string
		err := s.get(ctx, s.reader, &existing, `SELECT username FROM administrators WHERE org_id = ? AND username_fold = ?`,
			a.OrgID, FoldUsername(a.UserName))
		if err == nil {
			return &ExistsError{Kind: "administrator", Field: "userName", Existing: existing}
		}
	}
	return &ExistsError{Kind: "administrator", Field: "id", Existing: "(one of the batch)"}
}

// Administrator returns one administrator of org by id.
func (s *SQL) Administrator(ctx context.Context, org, id string) (Administrator, error) {
	return s.readAdministrator(ctx, `SELECT `+administratorColumns+` FROM administrators WHERE id = ? AND org_id = ?`, []any{id, org})
}

// AdministratorWithGroups returns one administrator and its groups in one
// statement: a SCIM GET of a User needs both, and a second round trip
// costs as much as the first.
func (s *SQL) AdministratorWithGroups(ctx context.Context, org, id string) (Administrator, []GroupRef, error) {
	var groups sql.NullString
	a, err := s.readAdministrator(ctx, s.d.administratorWithGroups, []any{id, org}, &groups)
	if err != nil {
		return Administrator{}, nil, err
	}
	refs, err := parseGroupRefs(groups)
	if err != nil {
		return Administrator{}, nil, err
	}
	return a, refs, nil
}

// parseGroupRefs reads the groupRefs column: [[id, displayName], ...].
func parseGroupRefs(col sql.NullString) ([]GroupRef, error) {
	if !col.Valid {
		return nil, nil
	}
	return decodeGroupRefs(col.String)
}

// AdministratorByUsername matches username exactly, byte for byte.
func (s *SQL) AdministratorByUsername(ctx context.Context, org, username string) (Administrator, error) {
	if !storable(username) {
		return Administrator{}, ErrNotFound // no stored username can equal it
	}
	// The fold narrows to one row through the unique index; the equality on
	// username then makes the match exact whatever the column's collation.
	return s.readAdministrator(ctx, `SELECT `+administratorColumns+` FROM administrators
		WHERE org_id = ? AND username_fold = ? AND username = ?`, []any{org, FoldUsername(username), username})
}

// UpdateAdministrator applies fn to the administrator (see Store). The
// role of a SCIM-managed administrator is computed by the UPDATE itself
// (managedRole) and read back.
func (s *SQL) UpdateAdministrator(ctx context.Context, org, id string, rule SuperRule, fn func(*Administrator) error) (Administrator, error) {
	var before Administrator
	a, err := updateRecord(ctx, s, `SELECT `+administratorColumns+` FROM administrators WHERE id = ? AND org_id = ?`, []any{id, org}, fn,
		func(b, after *Administrator) {
			before = *b
			after.ID, after.OrgID, after.CreatedAt = b.ID, b.OrgID, b.CreatedAt
			after.Version, after.UpdatedAt = b.Version+1, s.timestamp()
			after.LastLoginAt = micro(after.LastLoginAt)
		},
		func(tx *sqlx.Tx, a *Administrator) (int64, error) {
			role, roleArg := `?`, string(a.Role)
			if a.SCIMManaged {
				role, roleArg = managedRole(`?`), string(a.SCIMRole)
			}
			if err := validAdministrator(a); err != nil {
				return 0, err
			}
			var stored string
			q, args, folded := s.changing(tx, org, `UPDATE administrators SET username = ?, username_fold = ?, external_id = ?,
				given_name = ?, family_name = ?, email = ?, emails = ?, phone = ?, role = `+role+`, status = ?, scim_managed = ?, scim_role = ?,
				updated_at = ?, last_login_at = ?, version = ?, attributes = ?, language = ? WHERE id = ? AND org_id = ? AND version = ? RETURNING role`,
				a.UserName, FoldUsername(a.UserName), a.ExternalID, a.GivenName, a.FamilyName, a.Email, a.Emails, a.Phone,
				roleArg, string(a.Status), a.SCIMManaged, string(a.SCIMRole), a.UpdatedAt, a.LastLoginAt, a.Version,
				a.Attributes, a.Language, a.ID, a.OrgID, a.Version-1)
			err := sqlx.GetContext(ctx, tx, &stored, s.q(q), args...)
			if errors.Is(err, sql.ErrNoRows) {
				return 0, nil
			}
			if err := s.administratorWriteError(unavailable(err), a); err != nil {
				return 0, err
			}
			a.Role = Role(stored)
			if err := s.audit(ctx, tx, a.OrgID, change{action: AuditAdministratorUpdate, targetKind: "administrator", targetID: a.ID,
				targetName: a.UserName, before: administratorView(&before), after: administratorView(a)}); err != nil {
				return 0, err
			}
			if !folded {
				if err := s.changed(ctx, tx, org); err != nil {
					return 0, err
				}
			}
			if err := s.replaceEmails(ctx, tx, &before, a); err != nil {
				return 0, err
			}
			if a.Status == StatusDeactivated && before.Status != StatusDeactivated {
				if err := s.deprovision(ctx, tx, org, a.ID); err != nil {
					return 0, err
				}
			}
			// Last: settleSuper's lock is taken after every other lock of
			// the write (see settleSuper).
			if was := countsAsSuper(&before); was != countsAsSuper(a) {
				if err := s.settleSuper(ctx, tx, org, rule, was); err != nil {
					return 0, err
				}
			}
			return 1, nil
		})
	if err != nil {
		return Administrator{}, s.nameTaken(ctx, err)
	}
	return a, nil
}

// DeleteAdministrator removes the administrator, its group memberships and
// invitations (see Store). The groups it leaves get a new version: their
// member list changed.
func (s *SQL) DeleteAdministrator(ctx context.Context, org, id string, rule SuperRule, check func(Administrator) error) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		// Groups first, then the administrator: the order PatchGroup
		// takes its locks in, so the two cannot deadlock on PostgreSQL.
		if _, err := s.exec(ctx, tx, `UPDATE groups SET version = version + 1, updated_at = ?
			WHERE id IN (SELECT group_id FROM group_members WHERE administrator_id = ?) AND org_id = ?`, s.timestamp(), id, org); err != nil {
			return fmt.Errorf("store: delete administrator: %w", err)
		}
		var before Administrator
		if err := s.get(ctx, tx, &before, `SELECT `+administratorColumns+` FROM administrators WHERE id = ? AND org_id = ?`+s.d.forUpdate,
			id, org); err != nil {
			return err
		}
		// Checked on the locked row, in the transaction that deletes it: a
		// write that committed after the caller read its version is seen.
		if check != nil {
			if err := check(before); err != nil {
				return err
			}
		}
		if err := s.deprovision(ctx, tx, org, id); err != nil {
			return err
		}
		n, err := s.exec(ctx, tx, `DELETE FROM administrators WHERE id = ? AND org_id = ?`, id, org)
		if err != nil {
			return fmt.Errorf("store: delete administrator: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		if err := s.audit(ctx, tx, org, change{action: AuditAdministratorDelete, targetKind: "administrator", targetID: id,
			targetName: before.UserName, before: administratorView(&before)}); err != nil {
			return err
		}
		if err := s.addCount(ctx, tx, org, countAdministrators, -1); err != nil {
			return err
		}
		if countsAsSuper(&before) { // last, as in UpdateAdministrator
			return s.settleSuper(ctx, tx, org, rule, true)
		}
		return nil
	})
}
