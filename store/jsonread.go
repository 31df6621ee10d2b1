package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The emails column and the group references of a read are JSON the store
// writes itself, read on every administrator a SCIM GET or list returns.
// encoding/json spends more on them than SQLite spends finding the row, so
// they are read here without reflection. Only the shapes the store writes
// are understood; anything else (an escaped string, a key this reader does
// not know, an error in the text) falls back to encoding/json, so the
// result is always what encoding/json would give (FuzzDecodeEmails holds
// both to that).

// jsonWalk walks a JSON text.
type jsonWalk struct {
	s  string
	i  int
	ok bool
}

func (t *jsonWalk) space() {
	for t.i < len(t.s) {
		switch t.s[t.i] {
		case ' ', '\t', '\n', '\r':
			t.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether c comes next, taking it if so.
func (t *jsonWalk) next(c byte) bool {
	t.space()
	if t.i < len(t.s) && t.s[t.i] == c {
		t.i++
		return true
	}
	return false
}

// expect is next for a byte that must come; otherwise the walk fails.
func (t *jsonWalk) expect(c byte) {
	if !t.next(c) {
		t.ok = false
	}
}

// str reads a string of valid UTF-8 without escapes; anything else fails
// the walk (encoding/json would unescape it, or replace invalid bytes).
func (t *jsonWalk) str() string {
	t.expect('"')
	if !t.ok {
		return ""
	}
	start, ascii := t.i, true
	for ; t.i < len(t.s); t.i++ {
		switch c := t.s[t.i]; {
		case c == '"':
			t.i++
			s := t.s[start : t.i-1]
			if !ascii && !utf8.ValidString(s) {
				t.ok = false
			}
			return s
		case c == '\\' || c < 0x20:
			t.ok = false
			return ""
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	t.ok = false
	return ""
}

func (t *jsonWalk) boolean() bool {
	t.space()
	switch {
	case strings.HasPrefix(t.s[t.i:], "true"):
		t.i += 4
		return true
	case strings.HasPrefix(t.s[t.i:], "false"):
		t.i += 5
		return false
	}
	t.ok = false
	return false
}

// list reads an array, calling item for each element, and reports
// whether it was one (not null).
func (t *jsonWalk) list(item func()) bool {
	t.space()
	if strings.HasPrefix(t.s[t.i:], "null") {
		t.i += 4
		return false
	}
	t.expect('[')
	if !t.ok || t.next(']') {
		return true
	}
	for t.ok {
		item()
		if !t.next(',') {
			break
		}
	}
	t.expect(']')
	return true
}

// object reads an object, calling member for each member after its key
// and colon.
func (t *jsonWalk) object(member func(key string)) {
	t.expect('{')
	if !t.ok || t.next('}') {
		return
	}
	for t.ok {
		key := t.str()
		t.expect(':')
		member(key)
		if !t.next(',') {
			break
		}
	}
	t.expect('}')
}

// end reports whether the whole text was read without a failure.
func (t *jsonWalk) end() bool {
	t.space()
	return t.ok && t.i == len(t.s)
}

// decodeEmails reads the emails column.
func decodeEmails(s string) ([]Email, error) {
	t := jsonWalk{s: s, ok: true}
	var out []Email
	array := t.list(func() {
		var e Email
		t.object(func(key string) {
			switch key {
			case "value":
				e.Value = t.str()
			case "type":
				e.Type = t.str()
			case "display":
				e.Display = t.str()
			case "primary":
				e.Primary = t.boolean()
			default:
				t.ok = false
			}
		})
		out = append(out, e)
	})
	if t.end() {
		if array && out == nil {
			out = []Email{} // as encoding/json reads []
		}
		return out, nil
	}
	out = nil
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeGroupRefs reads the group references of a read: [[id, name], ...].
func decodeGroupRefs(s string) ([]GroupRef, error) {
	t := jsonWalk{s: s, ok: true}
	var out []GroupRef
	t.list(func() {
		t.expect('[')
		id := t.str()
		t.expect(',')
		name := t.str()
		t.expect(']')
		out = append(out, GroupRef{ID: id, DisplayName: name})
	})
	if t.end() {
		return out, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("store: groups of administrator: %w", err)
	}
	out = nil
	for _, p := range pairs {
		out = append(out, GroupRef{ID: p[0], DisplayName: p[1]})
	}
	return out, nil
}
