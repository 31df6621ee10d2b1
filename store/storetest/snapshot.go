package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"gatehouse/store"
)

// Tables lists every table of the store's schema, so checks built on it
// cover the tables of later migrations too.
func Tables(tb testing.TB, s *store.SQL) []string {
	tb.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.Dialect() == "postgres" {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`
	}
	reader, _ := s.DB()
	var names []string
	rows, err := reader.QueryContext(context.Background(), q)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if !slices.Contains(names, "orgs") {
		tb.Fatalf("storetest: no orgs table among %v", names)
	}
	return names
}

// Dump returns every value of every row of every table, as table -> rows.
func Dump(tb testing.TB, s *store.SQL) map[string][][]any {
	tb.Helper()
	reader, _ := s.DB()
	out := map[string][][]any{}
	for _, table := range Tables(tb, s) {
		rows, err := reader.QueryContext(context.Background(), `SELECT * FROM `+table)
		if err != nil {
			tb.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			tb.Fatal(err)
		}
		out[table] = [][]any{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			out[table] = append(out[table], vals)
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// Snapshot is the whole content of a store, each table's rows printed and
// sorted, to prove that a refused request wrote nothing — no row added,
// removed or changed.
type Snapshot map[string][]string

// notWrites are the tables a refused request changes by design: the
// provisioning log records every SCIM request, refused or not, and writes
// it after the answer, so a snapshot may catch an earlier request's entry.
var notWrites = []string{"scim_log"}

// TakeSnapshot reads every row of every table but notWrites.
func TakeSnapshot(tb testing.TB, s *store.SQL) Snapshot {
	tb.Helper()
	snap := Snapshot{}
	for table, rows := range Dump(tb, s) {
		if slices.Contains(notWrites, table) {
			continue
		}
		printed := make([]string, len(rows))
		for i, r := range rows {
			printed[i] = fmt.Sprintf("%q", r)
		}
		slices.Sort(printed)
		snap[table] = printed
	}
	return snap
}

// AssertUnchanged fails tb if the store's content differs from before.
func AssertUnchanged(tb testing.TB, s *store.SQL, before Snapshot) {
	tb.Helper()
	after := TakeSnapshot(tb, s)
	for table, rows := range after {
		if !slices.Equal(before[table], rows) {
			tb.Errorf("table %s changed by a refused request:\nbefore %v\nafter  %v", table, before[table], rows)
		}
	}
}
