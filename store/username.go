package store

import (
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// FoldUsername is the key that makes usernames unique inside an organization
// case-insensitively: Unicode full case folding (x/text/cases.Fold), computed
// in Go so SQLite and PostgreSQL agree whatever their collations, then NFC
// normalization so a composed and a decomposed "é" collide too. It is used
// only for uniqueness; lookups and sign-in compare the username exactly.
func FoldUsername(username string) string {
	// A Caser keeps state, so each call takes its own; for ASCII-only input
	// (most usernames) a byte loop gives the same answer without one.
	for i := 0; i < len(username); i++ {
		if username[i] >= 0x80 {
			return norm.NFC.String(cases.Fold().String(username))
		}
	}
	b := []byte(username)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
