package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"unicode"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestFoldInSQL: the fold that comparisons and sorts compute in SQL (for
// text without a *_fold column) is textFold (Fold but for Cherokee), on every cased code point and on
// strings where context or normalization matter, on SQLite, on PostgreSQL,
// and on a PostgreSQL database whose locale is C (where lower() folds
// ASCII only).
func TestFoldInSQL(t *testing.T) {
	var in []string
	for r := rune(0x20); r <= unicode.MaxRune; r++ {
		if unicode.Is(unicode.Cs, r) || r == 0x7f {
			continue
		}
		if unicode.ToLower(r) != r || unicode.ToUpper(r) != r || unicode.SimpleFold(r) != r {
			in = append(in, string(r))
		}
	}
	in = append(in, "ΟΔΟΣ ΟΔΟΣ", "Straße STRASSE ẞ", "ÉMILE Zoë", "E\u0301MILE Zoe\u0308", "İstanbul", "ǅemal", "ﬁnance", "Ꮳherokee ꮳ", "MÜLLER", "plain ascii",
		"Mixed ASCII Case 0123 ~!@#", "TAB\tAND\nNEWLINE", "ASCII then É", "")
	check := func(t *testing.T, s *store.SQL) {
		got, err := store.FoldInSQL(context.Background(), s, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(in) {
			t.Fatalf("%d results for %d strings", len(got), len(in))
		}
		bad := 0
		for i, s := range in {
			if want := store.TextFold(s); got[i] != want {
				if bad++; bad <= 20 {
					t.Errorf("fold %q (%U): SQL %q, Go %q", s, []rune(s)[0], got[i], want)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d strings fold differently", bad, len(in))
		}
	}
	t.Run("sqlite", func(t *testing.T) { check(t, storetest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { check(t, storetest.Postgres(t)) })
	t.Run("postgres C locale", func(t *testing.T) {
		u, err := url.Parse(storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		name := u.Path[1:] + "_c"
		if _, err := db.Exec(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`, name)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
		var lower string
		u.Path = "/" + name
		c, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.QueryRow(`SELECT lower('ÉMILE')`).Scan(&lower); err != nil || lower != "Émile" {
			t.Fatalf("a C database's lower('ÉMILE') is %q (%v); the test needs one that folds ASCII only", lower, err)
		}
		s, err := store.Open(context.Background(), u.String(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
	})
}
