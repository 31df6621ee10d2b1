package store

import (
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Fold is the store's case-insensitive key of a string: Unicode full case
// folding (x/text/cases.Fold), computed in Go so SQLite and PostgreSQL agree
// whatever their collations, then NFC normalization so a composed and a
// decomposed "é" fold alike. The *_fold columns hold it (usernames, group
// display names, email addresses), and filters with Compare.Fold compare it.
func Fold(s string) string {
	// A Caser keeps state, so each call takes its own; for ASCII-only input
	// (most names and addresses) a byte loop gives the same answer without
	// one.
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return norm.NFC.String(cases.Fold().String(s))
		}
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// FoldUsername is the key that makes usernames unique inside an
// organization case-insensitively: Fold. It is used only for uniqueness;
// lookups and sign-in compare the username exactly.
func FoldUsername(username string) string { return Fold(username) }
