package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
)

// ExplainQuery returns the database's plan of each statement
// QueryAdministrators (resource "administrators") or QueryGroups
// ("groups") runs for q: EXPLAIN QUERY PLAN on SQLite, EXPLAIN on
// PostgreSQL, one line of the plan a string.
func ExplainQuery(ctx context.Context, s *SQL, resource, org string, q Query) ([]string, error) {
	res := administratorsResource
	if resource == "groups" {
		res = groupsResource
	}
	qs, err := s.buildQuery(res, "", org, q)
	if err != nil {
		return nil, err
	}
	explain, col := "EXPLAIN ", 0
	if s.d.name == "sqlite" {
		explain, col = "EXPLAIN QUERY PLAN ", 3
	}
	var plan []string
	for _, e := range []expr{qs.count, qs.page} {
		if e.sql == "" {
			continue
		}
		rows, err := s.reader.QueryContext(ctx, s.reader.Rebind(explain+e.sql), e.args...)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, e.sql)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			plan = append(plan, fmt.Sprint(vals[col]))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// MigrationSQL returns the text of one embedded migration of a dialect
// ("sqlite" or "postgres").
func MigrationSQL(dialect string, version int) string {
	matches, _ := fs.Glob(migrationFiles, path.Join("migrations", dialect, fmt.Sprintf("%04d_*.sql", version)))
	if len(matches) != 1 {
		panic(fmt.Sprintf("no migration %d for %s", version, dialect))
	}
	b, _ := fs.ReadFile(migrationFiles, matches[0])
	return string(b)
}

// WithoutGroupCommit makes CreateAdministrator on s run one transaction
// per create, as before group commit, for benchmarks that compare the two.
// Call it before s is used concurrently.
func WithoutGroupCommit(s *SQL) {
	if s.creates != nil {
		s.creates.close()
		s.creates = nil
	}
}

// CommitBatch runs creates as one batch of the group commit of s, each with
// the actor at its index, as if they had all been queued at once and the
// callers at the indexes in abandoned had given up before the batch took
// them. It returns what each caller that waited hears.
func CommitBatch(ctx context.Context, s *SQL, creates []Administrator, actors []Actor, abandoned map[int]bool) ([]Administrator, []error) {
	out, errs := make([]Administrator, len(creates)), make([]error, len(creates))
	reqs := make([]*createReq, len(creates))
	var batch []*createReq
	for i, a := range creates {
		if reqs[i], errs[i] = s.newCreateReq(a, actors[i]); errs[i] != nil {
			continue
		}
		if abandoned[i] {
			reqs[i].state.Store(reqAbandoned)
		}
		batch = append(batch, reqs[i])
	}
	s.creates.commit(batch)
	for i, r := range reqs {
		if r == nil || abandoned[i] {
			continue
		}
		res := <-r.out
		out[i], errs[i] = res.a, s.nameTaken(ctx, res.err)
	}
	return out, errs
}

// FoldInSQL folds each of in through the dialect's SQL fold, the one
// comparisons and sorts without a *_fold column use.
func FoldInSQL(ctx context.Context, s *SQL, in []string) ([]string, error) {
	var q expr
	if s.d.name == "sqlite" {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		q = cat("SELECT ", s.d.fold(cat("value")), " FROM json_each(", param{string(b)}, ") ORDER BY key")
	} else {
		q = cat("SELECT ", s.d.fold(cat("t")), " FROM unnest(CAST(", param{in}, " AS text[])) WITH ORDINALITY AS u(t, i) ORDER BY i")
	}
	var out []string
	err := s.reader.SelectContext(ctx, &out, s.reader.Rebind(q.sql), q.args...)
	return out, err
}

// TextFold is the fold FoldInSQL must match.
var TextFold = textFold

// ExplainSyncRoles returns the plan of the role recompute of ids of org
// (syncRoles), one line a string: on PostgreSQL EXPLAIN (ANALYZE, BUFFERS)
// of the statement, run in a transaction rolled back; on SQLite EXPLAIN
// QUERY PLAN.
func ExplainSyncRoles(ctx context.Context, s *SQL, org string, ids []string) ([]string, error) {
	args := []any{org}
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, s.timestamp())
	explain, col := "EXPLAIN (ANALYZE, BUFFERS) ", 0
	if s.d.name == "sqlite" {
		explain, col = "EXPLAIN QUERY PLAN ", 3
	}
	tx, err := s.writer.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, s.q(explain+syncRolesSQL(`id IN `+placeholders(1, len(ids)))), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		plan = append(plan, fmt.Sprint(vals[col]))
	}
	return plan, rows.Err()
}
