package store

import (
	"context"
	"database/sql"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/text/unicode/norm"
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
//     to NFC; text that is all ASCII (as many bytes as characters) is only
//     lowercased, which is its fold, skipping the table's regular
//     expression and the normalization: a search or sort over 10,000
//     names went from 86 to 20 ms. A test checks it against textFold for
//     every cased code point and mixed ASCII strings.
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

// sqliteFoldSQL folds in SQL: ASCII text (as many characters as bytes)
// through SQLite's lower(), which folds it exactly as textFold does (A-Z
// to a-z, nothing else), and anything else through gatehouse_fold (text
// with a NUL, whose length() stops there, goes that way too). A call back
// into Go costs microseconds a row (cgo, and go-sqlite3's reflection),
// which a search or sort over the names of 10,000 administrators pays
// three times a row: the console's Administration page spent most of its
// time there.
func sqliteFoldSQL(x expr) expr {
	return cat("(CASE WHEN typeof(", x, ") = 'text' AND length(", x, ") = length(CAST(", x, " AS BLOB)) THEN lower(", x,
		") ELSE gatehouse_fold(", x, ") END)")
}

// postgresFoldSQL is the ICU expression; postgresLowerSQL the fallback.
// The table is applied only to text that holds a character it maps, or
// one whose lowercase it maps (a regular expression finds them): the
// table's translate and replaces cost ten times ICU's lowercase, and most
// text, accented Latin included, needs none of it.
func postgresFoldSQL(x expr) expr {
	lower := cat("lower((", x, `) COLLATE "und-x-icu")`)
	return cat("(CASE WHEN octet_length(", x, ") = char_length(", x, ") THEN ", lower,
		" WHEN (", x, ") ~ ", pgFold.affected, " THEN normalize(", pgFold.prefix, lower, pgFold.suffix,
		", NFC) ELSE normalize(", lower, `, NFC) END) COLLATE "C"`)
}

func postgresLowerSQL(x expr) expr { return cat("lower(", x, ")") }

// pgFold is the table that turns ICU's lowercase into textFold: the SQL
// around the lowercase (prefix, suffix), and a regular expression literal
// matching the text it can change (affected).
var pgFold = func() (f struct{ prefix, suffix, affected string }) {
	var from, to, affected strings.Builder
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
		if folded == norm.NFC.String(s) { // normalize does it (CJK compatibility ideographs, ...)
			continue
		}
		affected.WriteRune(r)
		if utf8.RuneCountInString(folded) == 1 {
			from.WriteRune(r)
			to.WriteString(folded)
		} else {
			replaces = append(replaces, s, folded)
		}
	}
	// And the characters whose lowercase is one of them (ẞ, ᾈ, Cherokee
	// capitals, ...), and Σ, which ICU lowercases to ς at the end of a
	// word (Unicode's Final_Sigma context).
	mapped := affected.String()
	affected.WriteRune('Σ')
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if l := unicode.ToLower(r); l != r && strings.ContainsRune(mapped, l) {
			affected.WriteRune(r)
		}
	}
	// The table holds no quote, backslash, bracket or hyphen: only
	// letters and marks.
	f.affected = "'[" + affected.String() + "]'"
	for i := 0; i < len(replaces); i += 2 {
		f.prefix += "replace("
	}
	f.prefix += "translate("
	f.suffix = ", '" + from.String() + "', '" + to.String() + "')"
	for i := 0; i < len(replaces); i += 2 {
		f.suffix += ", '" + replaces[i] + "', '" + replaces[i+1] + "')"
	}
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
