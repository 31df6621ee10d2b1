package filter

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Parse parses a SCIM filter (RFC 7644 §3.4.2.2), such as
//
//	userName eq "bjensen"
//	emails[type eq "work" and value co "@example.com"] or not (active eq true)
//
// Inputs longer than MaxFilterLen bytes, not valid UTF-8, or nested deeper
// than MaxDepth are rejected. Every error is an *Error.
func Parse(s string) (Expr, error) { return parseFilter(s, MaxFilterLen) }

// ParsePath parses a SCIM PATCH path (RFC 7644 §3.5.2), such as
//
//	members
//	name.familyName
//	emails[type eq "work"].value
//	urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager
//
// Inputs longer than MaxPathLen bytes are rejected. Every error is an *Error.
func ParsePath(s string) (Path, error) { return parsePath(s, MaxPathLen) }

func parseFilter(s string, limit int) (Expr, error) {
	p := &parser{in: s, noun: "filter"}
	if err := p.checkInput(limit); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos == len(p.in) {
		return nil, p.errAt(0, "empty filter")
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ')':
			return nil, p.errAt(p.pos, `unexpected ")" without a matching "("`)
		case ']':
			return nil, p.errAt(p.pos, `unexpected "]" without a matching "["`)
		}
		return nil, p.errAt(p.pos, `expected "and", "or" or the end of the filter, found %s`, p.found(p.pos))
	}
	return e, nil
}

func parsePath(s string, limit int) (Path, error) {
	p := &parser{in: s, noun: "path", path: true}
	if err := p.checkInput(limit); err != nil {
		return Path{}, err
	}
	p.skipSpace()
	if p.pos == len(p.in) {
		return Path{}, p.errAt(0, "empty path")
	}
	attr, _, err := p.attrPath()
	if err != nil {
		return Path{}, err
	}
	path := Path{Attr: attr}
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '[' {
		if path.Filter, err = p.parseBracket(attr); err != nil {
			return Path{}, err
		}
		if p.pos < len(p.in) && p.in[p.pos] == '.' {
			p.pos++
			if path.Sub, err = p.subAttr(); err != nil {
				return Path{}, err
			}
		}
		p.skipSpace()
		if p.pos < len(p.in) {
			return Path{}, p.errAt(p.pos, `expected "." and a sub-attribute name, or the end of the path, found %s`, p.found(p.pos))
		}
		return path, nil
	}
	if p.pos < len(p.in) {
		return Path{}, p.errAt(p.pos, `expected "[" or the end of the path, found %s`, p.found(p.pos))
	}
	return path, nil
}

type parser struct {
	in        string
	pos       int
	depth     int    // open "(" around the current position
	inBracket bool   // inside a value filter "[...]"
	noun      string // "filter" or "path", for messages
	path      bool   // set Error.path
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), path: p.path}
}

func (p *parser) checkInput(limit int) error {
	if len(p.in) > limit {
		return p.errAt(limit, "%s is longer than %d bytes", p.noun, limit)
	}
	for i := 0; i < len(p.in); {
		if p.in[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(p.in[i:])
		if r == utf8.RuneError && n == 1 {
			return p.errAt(i, "invalid UTF-8")
		}
		i += n
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isDelim reports whether c ends a word: a keyword, attribute path or
// unquoted literal.
func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '(', ')', '[', ']', '"':
		return true
	}
	return false
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (p *parser) skipSpace() {
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
}

// wordAt returns the word starting at i, "" if i is at a delimiter or the end.
func (p *parser) wordAt(i int) string {
	j := i
	for j < len(p.in) && !isDelim(p.in[j]) {
		j++
	}
	return p.in[i:j]
}

// keyword skips spaces and consumes the word kw (case-insensitive) if it is
// next.
func (p *parser) keyword(kw string) bool {
	p.skipSpace()
	if w := p.wordAt(p.pos); strings.EqualFold(w, kw) {
		p.pos += len(w)
		return true
	}
	return false
}

// found describes the token at i for an error message.
func (p *parser) found(i int) string {
	if i >= len(p.in) {
		return "the end of the " + p.noun
	}
	switch c := p.in[i]; {
	case c == '"':
		j := i + 1
		for j < len(p.in) && p.in[j] != '"' && j-i <= 2*maxQuoted {
			if p.in[j] == '\\' {
				j++
			}
			j++
		}
		return "the string " + quote(p.in[i+1:min(j, len(p.in))])
	case isSpace(c):
		return "a space"
	case isDelim(c):
		return quote(string(c))
	}
	return quote(p.wordAt(i))
}

// enter opens a "(" at pos.
func (p *parser) enter(pos int) error {
	if p.depth >= MaxDepth {
		return p.errAt(pos, "%s is nested too deeply (more than %d levels of parentheses)", p.noun, MaxDepth)
	}
	p.depth++
	return nil
}

// closeGroup consumes the closer c of the group opened at open.
func (p *parser) closeGroup(c byte, open int) error {
	p.skipSpace()
	switch {
	case p.pos < len(p.in) && p.in[p.pos] == c:
		p.pos++
		return nil
	case p.pos == len(p.in):
		return p.errAt(p.pos, "expected %q to close the %q at position %d, found the end of the %s",
			string(c), p.in[open:open+1], open, p.noun)
	}
	return p.errAt(p.pos, `expected "and", "or" or %q, found %s`, string(c), p.found(p.pos))
}

// parseOr parses FILTER: and-terms joined by "or".
func (p *parser) parseOr() (Expr, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &Or{Left: left, Right: right}
	}
	return left, nil
}

// parseAnd parses unary terms joined by "and".
func (p *parser) parseAnd() (Expr, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		left = &And{Left: left, Right: right}
	}
	return left, nil
}

// parseUnary parses "(" FILTER ")", "not" "(" FILTER ")", or an attribute
// expression.
func (p *parser) parseUnary() (Expr, error) {
	p.skipSpace()
	start := p.pos
	if start == len(p.in) {
		return nil, p.errAt(start, "expected an attribute name, found the end of the %s", p.noun)
	}
	switch p.in[start] {
	case '(':
		return p.parseGroup()
	case ')', ']', '[', '"':
		return nil, p.errAt(start, "expected an attribute name, found %s", p.found(start))
	}
	if w := p.wordAt(start); strings.EqualFold(w, "not") {
		// "not" is the operator when "(" follows. Otherwise it can only be
		// an attribute called "not", followed by an operator or "[".
		p.pos += len(w)
		p.skipSpace()
		if p.pos < len(p.in) && p.in[p.pos] == '(' {
			x, err := p.parseGroup()
			if err != nil {
				return nil, err
			}
			return &Not{X: x}, nil
		}
		_, isOp := lookupOp(p.wordAt(p.pos))
		if !isOp && (p.pos == len(p.in) || p.in[p.pos] != '[') {
			return nil, p.errAt(p.pos, `expected "(" after "not", found %s`, p.found(p.pos))
		}
		p.pos = start
	}
	return p.parseAttrExpr()
}

// parseGroup parses "(" FILTER ")" at p.pos.
func (p *parser) parseGroup() (Expr, error) {
	open := p.pos
	if err := p.enter(open); err != nil {
		return nil, err
	}
	p.pos++
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if err := p.closeGroup(')', open); err != nil {
		return nil, err
	}
	p.depth--
	return e, nil
}

// parseAttrExpr parses attrPath "pr", attrPath compareOp compValue,
// attrPath "[" valFilter "]", or the Entra form
// attrPath "[" valFilter "]" "." subAttr (compareOp compValue / "pr").
func (p *parser) parseAttrExpr() (Expr, error) {
	start := p.pos
	attr, word, err := p.attrPath()
	if err != nil {
		return nil, err
	}
	if p.inBracket && (attr.URN != "" || attr.Sub != "") {
		return nil, p.errAt(start, `%s inside a value filter must be a plain sub-attribute name, such as "type" or "value"`, quote(word))
	}
	p.skipSpace()
	if p.pos == len(p.in) || p.in[p.pos] != '[' {
		return p.parseComparison(attr, word)
	}
	if p.inBracket {
		return nil, p.errAt(p.pos, "value filters cannot be nested")
	}
	inner, err := p.parseBracket(attr)
	if err != nil {
		return nil, err
	}
	if p.pos == len(p.in) || p.in[p.pos] != '.' {
		return &ValuePath{Attr: attr, Filter: inner}, nil
	}
	dot := p.pos
	p.pos++
	subStart := p.pos
	sub, err := p.subAttr()
	if err != nil {
		return nil, err
	}
	cmp, err := p.parseComparison(AttrPath{Name: sub}, p.in[subStart:p.pos])
	if err != nil {
		return nil, err
	}
	// The canonical text wraps an "or" bracket filter in parentheses; make
	// sure that text still parses.
	if isOr(inner) && p.depth+1+parenDepth(inner) > MaxDepth {
		return nil, p.errAt(dot, "%s is nested too deeply (more than %d levels of parentheses)", p.noun, MaxDepth)
	}
	return &ValuePath{Attr: attr, Filter: &And{Left: inner, Right: cmp}}, nil
}

// parseBracket parses "[" valFilter "]" at p.pos, after attr.
func (p *parser) parseBracket(attr AttrPath) (Expr, error) {
	open := p.pos
	if attr.Sub != "" {
		return nil, p.errAt(open, `a value filter "[...]" cannot follow the sub-attribute %s`, quote(attr.Name+"."+attr.Sub))
	}
	p.pos++
	p.inBracket = true
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if err := p.closeGroup(']', open); err != nil {
		return nil, err
	}
	p.inBracket = false
	return e, nil
}

// parseComparison parses compareOp compValue, or "pr", after attr (written
// as word).
func (p *parser) parseComparison(attr AttrPath, word string) (Expr, error) {
	p.skipSpace()
	opPos := p.pos
	w := p.wordAt(opPos)
	op, ok := lookupOp(w)
	if !ok {
		msg := "expected a comparison operator after %s, found %s"
		if strings.ContainsAny(w, "=<>!~") {
			msg += " (operators are words: eq, ne, co, sw, ew, gt, ge, lt, le, pr)"
		}
		return nil, p.errAt(opPos, msg, quote(word), p.found(opPos))
	}
	p.pos += len(w)
	p.skipSpace()
	if op == Pr {
		if p.looksLikeValue() {
			return nil, p.errAt(p.pos, `the "pr" operator takes no value, found %s`, p.found(p.pos))
		}
		return &Compare{Attr: attr, Op: Pr}, nil
	}
	v, err := p.parseValue(w)
	if err != nil {
		return nil, err
	}
	return &Compare{Attr: attr, Op: op, Value: v}, nil
}

func lookupOp(w string) (Op, bool) {
	if len(w) != 2 {
		return "", false
	}
	switch op := Op(strings.ToLower(w)); op {
	case Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le, Pr:
		return op, true
	}
	return "", false
}

func (p *parser) looksLikeValue() bool {
	if p.pos == len(p.in) {
		return false
	}
	if c := p.in[p.pos]; c == '"' || c == '-' || isDigit(c) {
		return true
	}
	switch strings.ToLower(p.wordAt(p.pos)) {
	case "true", "false", "null":
		return true
	}
	return false
}

// parseValue parses compValue: a JSON string, number, true, false or null.
func (p *parser) parseValue(opWord string) (Value, error) {
	start := p.pos
	if start < len(p.in) && p.in[start] == '"' {
		s, err := p.parseString()
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: KindString, V: s}, nil
	}
	w := p.wordAt(start)
	if w == "" {
		return Value{}, p.errAt(start, "expected a value after %s, found %s", quote(opWord), p.found(start))
	}
	var v Value
	switch strings.ToLower(w) {
	case "true":
		v = Value{Kind: KindBool, V: true}
	case "false":
		v = Value{Kind: KindBool, V: false}
	case "null":
		v = Value{Kind: KindNull}
	default:
		if !isNumber(w) {
			return Value{}, p.errAt(start, "invalid value %s after %s: expected a string in double quotes, a number, true, false or null",
				quote(w), quote(opWord))
		}
		v = Value{Kind: KindNumber, V: json.Number(w)}
	}
	p.pos += len(w)
	return v, nil
}

// isNumber reports whether w is a JSON number (RFC 8259 §6).
func isNumber(w string) bool {
	i := 0
	digits := func() bool {
		j := i
		for i < len(w) && isDigit(w[i]) {
			i++
		}
		return i > j
	}
	if i < len(w) && w[i] == '-' {
		i++
	}
	switch {
	case i == len(w):
		return false
	case w[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(w) && w[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(w) && (w[i] == 'e' || w[i] == 'E') {
		i++
		if i < len(w) && (w[i] == '+' || w[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(w)
}

// parseString parses the JSON string at p.pos (RFC 8259 §7). Raw control
// characters and unpaired UTF-16 surrogates are rejected.
func (p *parser) parseString() (string, error) {
	open := p.pos
	i := open + 1
	// Fast path: no escapes.
	for i < len(p.in) && p.in[i] != '"' && p.in[i] != '\\' && p.in[i] >= 0x20 {
		i++
	}
	if i < len(p.in) && p.in[i] == '"' {
		p.pos = i + 1
		return p.in[open+1 : i], nil
	}
	var b strings.Builder
	b.WriteString(p.in[open+1 : i])
	for i < len(p.in) {
		c := p.in[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return b.String(), nil
		case c < 0x20:
			return "", p.errAt(i, `control character %q in string: write it as an escape such as \n or \u0000`, string(c))
		case c != '\\':
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 == len(p.in) {
			break
		}
		switch e := p.in[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(p.in, i+2)
			if !ok {
				return "", p.errAt(i, `invalid escape in string: \u must be followed by four hexadecimal digits`)
			}
			n := 6
			if utf16.IsSurrogate(r) {
				var r2 rune = -1
				if i+7 < len(p.in) && p.in[i+6] == '\\' && p.in[i+7] == 'u' {
					r2, _ = hex4(p.in, i+8)
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", p.errAt(i, `invalid escape in string: unpaired UTF-16 surrogate %s`, p.in[i:i+6])
				}
				n = 12
			}
			b.WriteRune(r)
			i += n
			continue
		default:
			esc := p.in[i : i+2]
			if e <= ' ' || e >= 0x7f {
				_, size := utf8.DecodeRuneInString(p.in[i+1:])
				esc = quote(p.in[i : i+1+size])
			}
			return "", p.errAt(i, `invalid escape %s in string (valid: \" \\ \/ \b \f \n \r \t \uXXXX)`, esc)
		}
		i += 2
	}
	return "", p.errAt(open, `unterminated string: missing closing "`)
}

// hex4 decodes the four hexadecimal digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case isDigit(c):
			c -= '0'
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			c = (c | 0x20) - 'a' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// attrPath consumes and checks the attribute path at p.pos:
// [URN ":"] ATTRNAME ["." ATTRNAME]. It also returns the path as written.
func (p *parser) attrPath() (AttrPath, string, error) {
	start := p.pos
	w := p.wordAt(start)
	if w == "" {
		return AttrPath{}, "", p.errAt(start, "expected an attribute name, found %s", p.found(start))
	}
	var a AttrPath
	rest, off := w, start
	// The URN ends at the last ":": the "2.0" in
	// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager
	// belongs to the URN.
	if i := strings.LastIndexByte(w, ':'); i >= 0 {
		if err := p.checkURN(w[:i], start); err != nil {
			return AttrPath{}, "", err
		}
		a.URN, rest, off = w[:i], w[i+1:], start+i+1
		if rest == "" {
			return AttrPath{}, "", p.errAt(off, "expected an attribute name after the schema URN %s", quote(a.URN))
		}
	}
	name, sub, hasSub := strings.Cut(rest, ".")
	if name == "" {
		return AttrPath{}, "", p.errAt(off, "expected an attribute name, found %s", quote(rest))
	}
	if err := p.checkName(name, off); err != nil {
		return AttrPath{}, "", err
	}
	if hasSub {
		subPos := off + len(name) + 1
		if sub == "" {
			return AttrPath{}, "", p.errAt(subPos, `expected a sub-attribute name after "."`)
		}
		if err := p.checkName(sub, subPos); err != nil {
			return AttrPath{}, "", err
		}
	}
	a.Name, a.Sub = name, sub
	p.pos += len(w)
	return a, w, nil
}

// subAttr consumes the sub-attribute name after "].".
func (p *parser) subAttr() (string, error) {
	start := p.pos
	w := p.wordAt(start)
	if w == "" {
		return "", p.errAt(start, `expected a sub-attribute name after ".", found %s`, p.found(start))
	}
	if err := p.checkName(w, start); err != nil {
		return "", err
	}
	p.pos += len(w)
	return w, nil
}

// checkName checks ATTRNAME = ALPHA *(ALPHA / DIGIT / "-" / "_"), or "$ref"
// (RFC 7643 §2.1, §7), found at pos.
func (p *parser) checkName(n string, pos int) error {
	if strings.EqualFold(n, "$ref") {
		return nil
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if isAlpha(c) || i > 0 && (isDigit(c) || c == '-' || c == '_') {
			continue
		}
		switch {
		case i == 0 && (isDigit(c) || c == '-' || c == '_'):
			return p.errAt(pos, "attribute name %s must start with a letter", quote(n))
		case c == '.':
			return p.errAt(pos+i, "an attribute path has at most one sub-attribute (as in name.givenName)")
		case c == ':':
			return p.errAt(pos+i, `unexpected ":" in sub-attribute name %s`, quote(n))
		case strings.IndexByte("=<>!~", c) >= 0:
			return p.errAt(pos+i, "invalid character %q in attribute name (operators are words: eq, ne, co, sw, ew, gt, ge, lt, le, pr)", string(c))
		}
		r, _ := utf8.DecodeRuneInString(n[i:])
		return p.errAt(pos+i, "invalid character %s in attribute name", quote(string(r)))
	}
	return nil
}

// checkURN checks the schema URN prefix u found at pos: "urn:" followed by
// ":"-separated segments of letters, digits, "-", "." and "_".
func (p *parser) checkURN(u string, pos int) error {
	if len(u) < 4 || !strings.EqualFold(u[:4], "urn:") {
		return p.errAt(pos, `attribute prefix %s is not a schema URN (urn:...)`, quote(u))
	}
	segStart := 4
	for i := 4; i <= len(u); i++ {
		if i == len(u) || u[i] == ':' {
			if i == segStart {
				return p.errAt(pos+i, "empty segment in schema URN %s", quote(u))
			}
			segStart = i + 1
			continue
		}
		if c := u[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '.' && c != '_' {
			r, _ := utf8.DecodeRuneInString(u[i:])
			return p.errAt(pos+i, "invalid character %s in schema URN", quote(string(r)))
		}
	}
	return nil
}
