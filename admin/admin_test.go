package admin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// forEachBackend runs fn on a fresh SQLite store and a fresh PostgreSQL one.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *store.SQL)) {
	t.Helper()
	backends := []struct {
		name string
		open func(testing.TB) *store.SQL
	}{
		{"sqlite", storetest.SQLite},
		{"postgres", storetest.Postgres},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.open(t))
		})
	}
}

// tables lists every table of the store's schema, so that the checks below
// cover tables added by later migrations too.
func tables(t *testing.T, s *store.SQL) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.Dialect() == "postgres" {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`
	}
	reader, _ := s.DB()
	rows, err := reader.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// dump returns every value of every row of every table, as table -> rows.
func dump(t *testing.T, s *store.SQL) map[string][][]any {
	t.Helper()
	reader, _ := s.DB()
	out := map[string][][]any{}
	for _, table := range tables(t, s) {
		rows, err := reader.QueryContext(context.Background(), `SELECT * FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		out[table] = [][]any{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

func rowCounts(t *testing.T, s *store.SQL) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for table, rows := range dump(t, s) {
		counts[table] = len(rows)
	}
	return counts
}

func assertUnchanged(t *testing.T, s *store.SQL, before map[string]int) {
	t.Helper()
	after := rowCounts(t, s)
	for table, n := range before {
		if after[table] != n {
			t.Errorf("table %s: %d rows before, %d after a refused request", table, n, after[table])
		}
	}
}

// assertNotStored fails if the secret, as text or as its decoded random
// bytes, appears in any column of any row.
func assertNotStored(t *testing.T, s *store.SQL, secret string, raw []byte) {
	t.Helper()
	d := dump(t, s)
	if _, ok := d["invitations"]; !ok {
		t.Fatalf("dump found no invitations table, only %v", d)
	}
	for table, rows := range d {
		for _, row := range rows {
			for _, v := range row {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				default:
					b = []byte(fmt.Sprint(v))
				}
				if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, raw) {
					t.Errorf("table %s stores the secret in clear: %q", table, b)
				}
			}
		}
	}
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func decodeSecret(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("secret %q is not unpadded base64url: %v", s, err)
	}
	if len(b) != 32 {
		t.Fatalf("secret carries %d random bytes, want 32", len(b))
	}
	return b
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var e *admin.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *admin.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("got code %s (%s), want %s", e.Code, e.Message, code)
	}
	if e.Message == "" || strings.ContainsAny(e.Message, "\n\r") {
		t.Fatalf("message %q is not one line of text", e.Message)
	}
}

func mustNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want store.ErrNotFound", err)
	}
}
