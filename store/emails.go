package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
)

// indexedEmails is what administrator_emails holds for a: its Emails, or,
// when it has none, Email as its one primary address without a type.
func indexedEmails(a *Administrator) []Email {
	if len(a.Emails) > 0 {
		return a.Emails
	}
	if a.Email != "" {
		return []Email{{Value: a.Email, Primary: true}}
	}
	return nil
}

func validEmails(es []Email) error {
	for _, e := range es {
		switch {
		case e.Value == "":
			return errors.New("store: email without a value")
		case !storable(e.Value) || !storable(e.Type) || !storable(e.Display):
			return errors.New("store: email is not valid UTF-8 text")
		}
	}
	return nil
}

// emailChunk bounds the rows of one multi-row insert: eight parameters a
// row stays under both databases' parameter limits.
const emailChunk = 500

const (
	emailInsertColumns = `administrator_id, position, org_id, value, value_fold, type, display, is_primary`
	emailInsertArgs    = 8
)

// emailArgs are the emailInsertColumns of a's address e at pos.
func emailArgs(a *Administrator, pos int, e Email) []any {
	return []any{a.ID, pos, a.OrgID, e.Value, Fold(e.Value), e.Type, e.Display, e.Primary}
}

// insertEmails writes the email index rows of administrators that have
// none yet, in multi-row statements.
func (s *SQL) insertEmails(ctx context.Context, tx *sqlx.Tx, as []Administrator) error {
	type row struct {
		a   *Administrator
		pos int
		e   Email
	}
	var rows []row
	for i := range as {
		for pos, e := range indexedEmails(&as[i]) {
			rows = append(rows, row{&as[i], pos, e})
		}
	}
	for _, chunk := range chunks(rows, emailChunk) {
		args := make([]any, 0, len(chunk)*emailInsertArgs)
		for _, r := range chunk {
			args = append(args, emailArgs(r.a, r.pos, r.e)...)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO administrator_emails (`+emailInsertColumns+`)
			VALUES `+placeholders(len(chunk), emailInsertArgs), args...)
		if err != nil {
			return fmt.Errorf("store: index emails: %w", err)
		}
	}
	return nil
}

// replaceEmails rewrites the email index rows of a if its addresses
// changed since before.
func (s *SQL) replaceEmails(ctx context.Context, tx *sqlx.Tx, before, a *Administrator) error {
	if slices.Equal(indexedEmails(before), indexedEmails(a)) {
		return nil
	}
	if _, err := s.exec(ctx, tx, `DELETE FROM administrator_emails WHERE administrator_id = ?`, a.ID); err != nil {
		return fmt.Errorf("store: index emails: %w", err)
	}
	return s.insertEmails(ctx, tx, []Administrator{*a})
}

// queryableJSON checks that a document is JSON both databases can query:
// SQLite's JSON functions fail on malformed text, and PostgreSQL's jsonb
// also refuses \u0000 and unpaired UTF-16 surrogate escapes, which
// encoding/json accepts. A document stored with either would make every
// filter on the organization's attributes fail.
func queryableJSON(doc RawJSON) error {
	if len(doc) == 0 {
		return nil
	}
	if !json.Valid(doc) {
		return errors.New("store: attributes are not valid JSON")
	}
	// In valid JSON a backslash occurs only in strings and always starts an
	// escape, so scanning escapes needs no other state.
	for i := 0; i < len(doc); i++ {
		if doc[i] != '\\' {
			continue
		}
		i++
		if doc[i] != 'u' {
			continue
		}
		r := hex4(doc[i+1 : i+5])
		i += 4
		switch {
		case r == 0:
			return errors.New(`store: attributes contain \u0000`)
		case r >= 0xDC00 && r <= 0xDFFF:
			return errors.New("store: attributes contain an unpaired surrogate escape")
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(doc) || doc[i+1] != '\\' || doc[i+2] != 'u' {
				return errors.New("store: attributes contain an unpaired surrogate escape")
			}
			if lo := hex4(doc[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
				return errors.New("store: attributes contain an unpaired surrogate escape")
			}
			i += 6
		}
	}
	return nil
}

// hex4 decodes the four hex digits of a \u escape (json.Valid checked them).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
