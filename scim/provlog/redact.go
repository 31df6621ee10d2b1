package provlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// Redacted replaces every secret value in a stored body.
const Redacted = `"[redacted]"`

// maxRedactDepth bounds the redactor's recursion; SCIM documents nest far
// less (the server refuses more than 16 levels).
const maxRedactDepth = 64

var errNotJSON = errors.New("provlog: the body is not one JSON value")

// Redact returns doc with the value of every secret replaced by Redacted,
// keeping everything else byte for byte (the IdP's own formatting and
// member order). A secret is:
//   - the value of a member whose name looks like one (isSecretName), at
//     any depth: "password", "Password", "PASSWORD", the attribute's URN
//     form "urn:...:User:password", "bearerToken", "client_secret"...;
//   - the "value" of an object whose "path" names one: a PATCH operation
//     {"op":"replace","path":"password","value":"..."} (RFC 7644 §3.5.2),
//     whatever the order of its members or the case of their names.
//
// Member names are compared after JSON unescaping, so "pass\u0077ord" is
// "password". A body that is not one JSON value cannot be searched for
// secrets: Redact refuses it (errNotJSON), and the log keeps none of it.
func Redact(doc []byte) ([]byte, error) {
	out, _, err := redact(doc)
	return out, err
}

// topFields are the string members of a body's top-level object that
// name what the request was about (Entry reads them).
type topFields struct{ id, userName, displayName, filter string }

// redact is Redact, also returning topFields. Its scanner checks the
// whole JSON grammar as it goes (FuzzRedact holds it to json.Valid).
func redact(doc []byte) ([]byte, topFields, error) {
	p := redactor{b: doc}
	p.ws()
	if err := p.value(0); err != nil {
		return nil, p.top, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, p.top, errNotJSON
	}
	if len(p.spans) == 0 {
		return doc, p.top, nil
	}
	out := make([]byte, 0, len(doc))
	last := 0
	for _, s := range p.spans {
		out = append(out, doc[last:s.start]...)
		out = append(out, Redacted...)
		last = s.end
	}
	return append(out, doc[last:]...), p.top, nil
}

// secretWords are what a member name holding a secret contains, once
// lower-cased and stripped of everything but letters and digits.
var secretWords = [][]byte{[]byte("password"), []byte("passwd"), []byte("passphrase"), []byte("secret"),
	[]byte("token"), []byte("apikey"), []byte("authorization"), []byte("privatekey"), []byte("credential")}

// isSecretName reports whether a member name or a PATCH path names a
// secret. It errs on the side of redacting: "passwordChangedAt" is
// redacted too.
func isSecretName(name string) bool {
	var buf [96]byte
	n := 0
	for i := 0; i < len(name) && n < len(buf); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			buf[n] = c + 'a' - 'A'
		case ('a' <= c && c <= 'z') || ('0' <= c && c <= '9'):
			buf[n] = c
		default:
			continue
		}
		n++
	}
	folded := buf[:n]
	for _, w := range secretWords {
		if bytes.Contains(folded, w) {
			return true
		}
	}
	// A name longer than the buffer is checked whole, allocating.
	if n == len(buf) {
		return isSecretName(name[len(name)/2:]) || strings.Contains(strings.ToLower(name), "password")
	}
	return false
}

type span struct{ start, end int }

// redactor is a JSON scanner that finds the byte spans of secret values.
// It checks structure only as far as finding each value's end needs.
type redactor struct {
	b     []byte
	i     int
	spans []span // sorted, disjoint
	top   topFields
}

func (p *redactor) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *redactor) value(depth int) error {
	if depth > maxRedactDepth || p.i >= len(p.b) {
		return errNotJSON
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		_, err := p.str()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	}
	return errNotJSON
}

func (p *redactor) literal(w string) error {
	if !strings.HasPrefix(string(p.b[p.i:min(len(p.b), p.i+len(w))]), w) {
		return errNotJSON
	}
	p.i += len(w)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (RFC 8259 §6).
func (p *redactor) number() error {
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.digits() == 0:
		return errNotJSON
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return errNotJSON
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return errNotJSON
		}
	}
	return nil
}

func (p *redactor) digits() int {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// str scans a string (RFC 8259 §7) and returns its raw text between the
// quotes.
func (p *redactor) str() ([]byte, error) {
	start := p.i
	p.i++
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start+1 : p.i-1], nil
		case c < 0x20:
			return nil, errNotJSON
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return nil, errNotJSON
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return nil, errNotJSON
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, errNotJSON
					}
				}
				p.i += 6
			default:
				return nil, errNotJSON
			}
		default:
			p.i++
		}
	}
	return nil, errNotJSON
}

// name is a member name's text, unescaped when it holds escapes.
func name(raw []byte) (string, error) {
	if !strings.Contains(string(raw), `\`) {
		return string(raw), nil
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s); err != nil {
		return "", errNotJSON
	}
	return s, nil
}

func (p *redactor) array(depth int) error {
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return nil
	}
	for more := true; more; {
		p.ws()
		if err := p.value(depth + 1); err != nil {
			return err
		}
		var err error
		if more, err = p.sep(']'); err != nil {
			return err
		}
	}
	return nil
}

// sep reads what follows an element or a member: a comma (more follow)
// or the closing bracket.
func (p *redactor) sep(close byte) (more bool, err error) {
	p.ws()
	if p.i >= len(p.b) {
		return false, errNotJSON
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		return true, nil
	case close:
		p.i++
		return false, nil
	}
	return false, errNotJSON
}

func (p *redactor) object(depth int) error {
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil
	}
	// A PATCH operation's "path" and "value", in either order.
	var secretPath bool
	var val *span
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return errNotJSON
		}
		raw, err := p.str()
		if err != nil {
			return err
		}
		key, err := name(raw)
		if err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return errNotJSON
		}
		p.i++
		p.ws()
		start := p.i
		if isSecretName(key) {
			if err := p.value(depth + 1); err != nil {
				return err
			}
			p.spans = append(p.spans, span{start, p.i})
		} else {
			if err := p.value(depth + 1); err != nil {
				return err
			}
			if depth == 0 && p.b[start] == '"' {
				if err := p.topField(key, p.b[start+1:p.i-1]); err != nil {
					return err
				}
			}
			switch {
			case strings.EqualFold(key, "path") && p.b[start] == '"':
				s, err := name(p.b[start+1 : p.i-1])
				if err != nil {
					return err
				}
				secretPath = secretPath || isSecretName(s)
			case strings.EqualFold(key, "value"):
				val = &span{start, p.i}
			}
		}
		more, err := p.sep('}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	if secretPath && val != nil {
		p.cover(*val)
	}
	return nil
}

// topField keeps a top-level string member Entry reads.
func (p *redactor) topField(key string, raw []byte) error {
	var dst *string
	switch {
	case strings.EqualFold(key, "id"):
		dst = &p.top.id
	case strings.EqualFold(key, "userName"):
		dst = &p.top.userName
	case strings.EqualFold(key, "displayName"):
		dst = &p.top.displayName
	case strings.EqualFold(key, "filter"):
		dst = &p.top.filter
	default:
		return nil
	}
	v, err := name(raw)
	*dst = v
	return err
}

// cover redacts s whole, dropping the spans found inside it.
func (p *redactor) cover(s span) {
	kept := make([]span, 0, len(p.spans)+1)
	inserted := false
	for _, x := range p.spans {
		if x.start >= s.start && x.end <= s.end {
			continue
		}
		if !inserted && x.start >= s.end {
			kept = append(kept, s)
			inserted = true
		}
		kept = append(kept, x)
	}
	if !inserted {
		kept = append(kept, s)
	}
	p.spans = kept
}

// capBody cuts b to at most limit bytes at a character boundary and says
// whether it cut.
func capBody(b []byte, limit int) ([]byte, bool) {
	if len(b) <= limit {
		return b, false
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return b[:cut], true
}
