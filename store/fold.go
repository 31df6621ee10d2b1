package store

import (
	"context"
	"database/sql"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
)

// Case-insensitive comparisons and sorts of text without a *_fold column
// (a caseExact: false attribute kept in a plain column or in the JSON
// document) fold in SQL, and must fold alike on both databases, and as
// the *_fold columns do: textFold, which is Fold but for Cherokee.
// SQLite's lower() knows only ASCII, and PostgreSQL's follows the
// database's LC_CTYPE (ASCII only in a "C" cluster), so neither is used:
//
//   - SQLite calls textFold itself, registered as the function gatehouse_fold
//     on every connection.
//   - PostgreSQL lowercases through ICU's root locale, whatever the
//     cluster's locale, then maps the characters whose case fold is not
//     their lowercase (ß to ss, ς to σ, ﬁ to fi, Cherokee small letters to
//     capitals, ...), a table computed here from textFold, then normalizes
//     to NFC. A test checks it against textFold for every cased code point.
//     A server without ICU or not in UTF8 falls back to lower(), which
//     folds what the database's locale folds.

// textFold is the fold computed in SQL: Fold, with Cherokee folded to its
// capital letters as CaseFolding.txt does. x/text's cases.Fold swaps the
// Cherokee cases instead (Fold("Ꭰ") is "ꭰ", Fold("ꭰ") is "Ꭰ"), which no
// lowercase-based expression can reproduce; the *_fold columns keep Fold,
// which they were computed with.
func textFold(s string) string {
	f := Fold(s)
	if !strings.ContainsFunc(f, isCherokeeSmall) {
		return f
	}
	return strings.Map(func(r rune) rune {
		if isCherokeeSmall(r) {
			return unicode.ToUpper(r)
		}
		return r
	}, f)
}

func isCherokeeSmall(r rune) bool { return 0x13F8 <= r && r <= 0x13FD || 0xAB70 <= r && r <= 0xABBF }

// sqliteDriver is go-sqlite3 with gatehouse_fold on each connection.
const sqliteDriver = "sqlite3_gatehouse"

func init() {
	sql.Register(sqliteDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			return c.RegisterFunc("gatehouse_fold", sqliteFold, true)
		},
	})
}

// sqliteFold folds text; anything else (NULL: an absent JSON value) passes
// through.
func sqliteFold(v any) any {
	switch x := v.(type) {
	case string:
		return textFold(x)
	case []byte:
		if x == nil {
			return nil
		}
	}
	return v
}

func sqliteFoldSQL(x expr) expr { return cat("gatehouse_fold(", x, ")") }

// postgresFoldSQL is the ICU expression; postgresLowerSQL the fallback.
func postgresFoldSQL(x expr) expr {
	return cat(pgFold.prefix, "lower((", x, `) COLLATE "und-x-icu")`, pgFold.suffix)
}

func postgresLowerSQL(x expr) expr { return cat("lower(", x, ")") }

// pgFold is the SQL around ICU's lowercase that turns it into Fold.
var pgFold = func() (f struct{ prefix, suffix string }) {
	var from, to strings.Builder
	var replaces []string
	for r := rune(0); r <= unicode.MaxRune; r++ {
		// Characters ICU's lowercase leaves as they are (or produces)
		// whose fold differs; Fold normalizes to NFC, as the expression
		// does last.
		if unicode.ToLower(r) != r || !utf8.ValidRune(r) || unicode.Is(unicode.Cs, r) {
			continue
		}
		s := string(r)
		folded := textFold(s)
		if folded == s {
			continue
		}
		if utf8.RuneCountInString(folded) == 1 {
			from.WriteRune(r)
			to.WriteString(folded)
			continue
		}
		replaces = append(replaces, s, folded)
	}
	// The table holds no quote or backslash: only letters and marks.
	f.prefix = "normalize("
	for i := 0; i < len(replaces); i += 2 {
		f.prefix += "replace("
	}
	f.prefix += "translate("
	f.suffix = ", '" + from.String() + "', '" + to.String() + "')"
	for i := 0; i < len(replaces); i += 2 {
		f.suffix += ", '" + replaces[i] + "', '" + replaces[i+1] + "')"
	}
	f.suffix += `, NFC) COLLATE "C"`
	return f
}()

// usePostgresFold picks the PostgreSQL fold expression the server can run.
func (s *SQL) usePostgresFold(ctx context.Context) error {
	var icu bool
	err := s.reader.GetContext(ctx, &icu, `SELECT current_setting('server_encoding') = 'UTF8'
		AND EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')`)
	if err != nil {
		return err
	}
	s.d.fold, s.d.foldExact = postgresLowerSQL, false
	if icu {
		s.d.fold, s.d.foldExact = postgresFoldSQL, true
	}
	return nil
}
