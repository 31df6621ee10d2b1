package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

//go:embed migrations
var migrationFiles embed.FS

// migration is one embedded file, migrations/<dialect>/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func (s *SQL) migrations() ([]migration, error) {
	dir := path.Join("migrations", s.d.migrations)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration file %s is not NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("store: two migrations numbered %d", ms[i].version)
		}
	}
	return ms, nil
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, in order, each in its own transaction together with its
// record, so a migration runs exactly once even if gatehouse stops half way.
// Several instances starting at once on PostgreSQL serialize on an advisory
// lock taken inside each transaction; on SQLite the writer connection's
// BEGIN IMMEDIATE does the same.
func (s *SQL) migrate(ctx context.Context) error {
	ms, err := s.migrations()
	if err != nil {
		return err
	}
	// Under the same lock as the migrations: two PostgreSQL instances
	// racing on CREATE TABLE IF NOT EXISTS may otherwise both try to create
	// it, and the loser fails.
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at TEXT NOT NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sqlx.Tx) error {
			if err := s.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var n int
			if err := tx.GetContext(ctx, &n, s.q(`SELECT count(*) FROM schema_migrations WHERE version = ?`), m.version); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if step := backfills[m.version]; step != nil {
				if err := step(ctx, s, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, s.timestamp().Format("2006-01-02T15:04:05.000000Z"))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// lockMigrations makes concurrent migrators on PostgreSQL take turns, until
// the transaction ends; on SQLite the writer's BEGIN IMMEDIATE already does.
func (s *SQL) lockMigrations(ctx context.Context, tx *sqlx.Tx) error {
	if s.d.name != "postgres" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7238462091)`)
	return err
}

// backfills are Go steps that run after the migration of the same version,
// in its transaction, to fill columns SQL cannot compute the way the store
// does (Fold).
var backfills = map[int]func(ctx context.Context, s *SQL, tx *sqlx.Tx) error{
	2: backfillFolds,
}

// backfillFolds gives the groups and administrators that exist before
// migration 2 their display_name_fold and email index rows.
func backfillFolds(ctx context.Context, s *SQL, tx *sqlx.Tx) error {
	var groups []Group
	if err := sqlx.SelectContext(ctx, tx, &groups, `SELECT id, display_name FROM groups`); err != nil {
		return err
	}
	for _, g := range groups {
		if _, err := s.exec(ctx, tx, `UPDATE groups SET display_name_fold = ? WHERE id = ?`, Fold(g.DisplayName), g.ID); err != nil {
			return err
		}
	}
	var as []Administrator
	if err := sqlx.SelectContext(ctx, tx, &as, `SELECT id, org_id, email FROM administrators WHERE email <> ''`); err != nil {
		return err
	}
	return s.insertEmails(ctx, tx, as)
}

// MigrationVersions lists the versions recorded as applied, for tests and
// the operator.
func (s *SQL) MigrationVersions(ctx context.Context) ([]int, error) {
	var vs []int
	err := s.reader.SelectContext(ctx, &vs, `SELECT version FROM schema_migrations ORDER BY version`)
	return vs, err
}
