package filter

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Error is a syntax error in a filter or PATCH path. Its text is meant for
// the SCIM client (400 invalidFilter / invalidPath): it quotes at most two
// short fragments of the input, each cut to 20 bytes.
type Error struct {
	// Pos is the 0-based byte offset in the input of the offending token,
	// or len(input) when the input ended too early; 0 <= Pos <= len(input).
	Pos int
	// Msg describes the problem, without the position.
	Msg string

	path bool // from ParsePath
}

func (e *Error) Error() string {
	if e.path {
		return fmt.Sprintf("filter: invalid path at position %d: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("filter: at position %d: %s", e.Pos, e.Msg)
}

// maxQuoted bounds how many input bytes one quoted fragment of an error
// message may echo.
const maxQuoted = 20

// quote returns s as a Go string literal, cut to maxQuoted bytes (on a rune
// boundary) with "..." appended when it was longer.
func quote(s string) string {
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}
