// Package filter parses the SCIM filter language (RFC 7644 §3.4.2.2) and the
// SCIM PATCH path language (RFC 7644 §3.5.2) into a small syntax tree.
//
// The parser is meant for untrusted input: it bounds the input length
// (MaxFilterLen, MaxPathLen) and the nesting depth (MaxDepth), runs in time
// linear in the input, and reports every failure as an *Error whose text is
// safe to send to a SCIM client (it quotes at most a few short fragments of
// the input).
//
// # Grammar accepted
//
// Filters follow RFC 7644 Figure 1 with these deliberate leniencies, all seen
// in real clients or harmless:
//
//   - keywords (and, or, not, pr, the comparison operators) and the literals
//     true, false and null are case-insensitive (Entra ID sends "True");
//   - any run of spaces, tabs, CR or LF separates tokens, and no space is
//     needed next to "(", ")", "[", "]" or a quoted string;
//   - "not" may be written "not(" or "not (";
//   - a value path may be followed by ".subAttr op value", the form Microsoft
//     Entra ID sends: emails[type eq "work"].value eq "x@example.com". See
//     ValuePath for how it is represented.
//
// and these deliberate restrictions, which RFC 7643 §2.3.8 (complex
// attributes have no complex sub-attributes) makes meaningless anyway:
//
//   - an attribute path has at most one sub-attribute (name.familyName);
//   - value filters do not nest, and attributes inside one are bare
//     sub-attribute names (type, value, primary), without URN or ".";
//   - a value filter cannot follow a sub-attribute (name.givenName[...]).
//
// Attribute names are ALPHA *(ALPHA / DIGIT / "-" / "_"), or "$ref". A schema
// URN prefix is split from the attribute at the last ":" of the path, so the
// "2.0" inside urn:ietf:params:scim:schemas:extension:enterprise:2.0:User is
// part of the URN, not a sub-attribute.
package filter

import (
	"encoding/json"
	"strings"
)

// Limits applied to untrusted input.
const (
	MaxFilterLen = 4096 // bytes accepted by Parse
	MaxPathLen   = 1024 // bytes accepted by ParsePath
	MaxDepth     = 32   // nesting of "(" (grouping or not) in one expression
)

// Expr is a node of a parsed filter: *And, *Or, *Not, *Compare or
// *ValuePath. Trees built by Parse never contain nil nodes.
type Expr interface {
	// String returns the canonical filter text of the expression: lower-case
	// keywords, single spaces, parentheses only where the tree needs them.
	// Parse of that text yields an equal tree.
	String() string
	expr()
}

// And is "Left and Right". A chain a and b and c is left-associative:
// And{And{a, b}, c}.
type And struct{ Left, Right Expr }

// Or is "Left or Right", left-associative like And and binding more loosely.
type Or struct{ Left, Right Expr }

// Not is "not (X)".
type Not struct{ X Expr }

// Compare is an attribute expression: "Attr Op Value", or "Attr pr", in which
// case Value is the zero Value (Kind KindNone).
type Compare struct {
	Attr  AttrPath
	Op    Op
	Value Value
}

// ValuePath is "Attr[Filter]": true when some element of the multi-valued
// attribute Attr matches Filter, whose attribute paths name sub-attributes of
// Attr (RFC 7644 §3.4.2.2).
//
// The Entra ID form "emails[type eq "work"].value eq "x"" is not in the RFC
// grammar; it means "some work email has value x", so Parse represents it as
// the ValuePath
//
//	emails[type eq "work" and value eq "x"]
//
// that is, Filter is And{<bracket filter>, Compare{value eq "x"}}. The two
// texts parse to equal trees, and String prints the bracket form. The same
// element must satisfy both parts, which is what the IdP means and what an
// SQL translation of a ValuePath does naturally.
type ValuePath struct {
	Attr   AttrPath
	Filter Expr
}

// AttrPath names an attribute: [URN ":"] Name ["." Sub]. URN and Name keep
// the case in which they were written; use Key for lookups.
type AttrPath struct {
	URN  string // schema URN prefix without the final ":", or ""
	Name string // attribute name
	Sub  string // sub-attribute name, or ""
}

// Op is a comparison operator, always lower case.
type Op string

// The comparison operators of RFC 7644 Table 3.
const (
	Eq Op = "eq" // equal
	Ne Op = "ne" // not equal
	Co Op = "co" // contains
	Sw Op = "sw" // starts with
	Ew Op = "ew" // ends with
	Gt Op = "gt" // greater than
	Ge Op = "ge" // greater than or equal
	Lt Op = "lt" // less than
	Le Op = "le" // less than or equal
	Pr Op = "pr" // present (has a value); takes no comparison value
)

// Kind is the JSON type of a comparison value.
type Kind int

// Kinds of Value.
const (
	KindNone   Kind = iota // no value: the operand of pr
	KindString             // V is a string (JSON escapes decoded)
	KindNumber             // V is a json.Number holding the literal as written
	KindBool               // V is a bool
	KindNull               // V is nil
)

// Value is a comparison value, a JSON literal (RFC 7644 §3.4.2.2 compValue).
//
// Numbers are kept as json.Number, the exact text of the literal, so that no
// precision is lost before the caller knows the attribute's type (integer or
// decimal, RFC 7643 §2.3) and so that printing is exact.
type Value struct {
	Kind Kind
	V    any // string, json.Number, bool or nil, according to Kind
}

func (*And) expr()       {}
func (*Or) expr()        {}
func (*Not) expr()       {}
func (*Compare) expr()   {}
func (*ValuePath) expr() {}

// Path is a parsed PATCH path (RFC 7644 §3.5.2): attrPath, or
// valuePath [subAttr].
//
//	members                        Attr{Name: "members"}
//	name.familyName                Attr{Name: "name", Sub: "familyName"}
//	emails[type eq "work"].value   Attr{Name: "emails"}, Filter, Sub "value"
//
// At most one of Attr.Sub and Sub is set. A path made only of a schema URN
// (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User) parses as
// URN "urn:...:2.0" and Name "User"; the PATCH engine decides whether that
// names an extension.
type Path struct {
	Attr   AttrPath
	Filter Expr   // nil unless the path has a value filter
	Sub    string // sub-attribute after "]", or ""
}

// String returns the attribute path as written: URN ":" Name "." Sub.
func (a AttrPath) String() string {
	var b strings.Builder
	a.write(&b)
	return b.String()
}

// Key returns the lower-cased attribute path, for lookups in the schema:
// attribute names and schema URNs are case-insensitive (RFC 7643 §2.1).
func (a AttrPath) Key() string { return strings.ToLower(a.String()) }

func (a AttrPath) write(b *strings.Builder) {
	if a.URN != "" {
		b.WriteString(a.URN)
		b.WriteByte(':')
	}
	b.WriteString(a.Name)
	if a.Sub != "" {
		b.WriteByte('.')
		b.WriteString(a.Sub)
	}
}

// String returns the canonical path text.
func (p Path) String() string {
	var b strings.Builder
	p.Attr.write(&b)
	if p.Filter != nil {
		b.WriteByte('[')
		writeExpr(&b, p.Filter)
		b.WriteByte(']')
		if p.Sub != "" {
			b.WriteByte('.')
			b.WriteString(p.Sub)
		}
	}
	return b.String()
}

func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindBool:
		return "boolean"
	case KindNull:
		return "null"
	}
	return "invalid"
}

// String returns the value as a JSON literal; "" for KindNone.
func (v Value) String() string {
	var b strings.Builder
	v.write(&b)
	return b.String()
}

func (v Value) write(b *strings.Builder) {
	switch x := v.V.(type) {
	case string:
		writeString(b, x)
	case json.Number:
		b.WriteString(string(x))
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		if v.Kind == KindNull {
			b.WriteString("null")
		}
	}
}

// writeString writes s as a JSON string. Non-ASCII text is written as is
// (Parse only produces valid UTF-8); quotes, backslashes and control
// characters are escaped.
func writeString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

func (e *And) String() string       { return exprString(e) }
func (e *Or) String() string        { return exprString(e) }
func (e *Not) String() string       { return exprString(e) }
func (e *Compare) String() string   { return exprString(e) }
func (e *ValuePath) String() string { return exprString(e) }

func exprString(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

// writeExpr prints e with the fewest parentheses that keep its shape under
// the precedence not > and > or and left associativity.
func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case *Or:
		writeExpr(b, e.Left)
		b.WriteString(" or ")
		writeOperand(b, e.Right, isOr(e.Right))
	case *And:
		writeOperand(b, e.Left, isOr(e.Left))
		b.WriteString(" and ")
		writeOperand(b, e.Right, isOr(e.Right) || isAnd(e.Right))
	case *Not:
		b.WriteString("not (")
		writeExpr(b, e.X)
		b.WriteByte(')')
	case *Compare:
		e.Attr.write(b)
		b.WriteByte(' ')
		b.WriteString(string(e.Op))
		if e.Op != Pr {
			b.WriteByte(' ')
			e.Value.write(b)
		}
	case *ValuePath:
		e.Attr.write(b)
		b.WriteByte('[')
		writeExpr(b, e.Filter)
		b.WriteByte(']')
	}
}

func writeOperand(b *strings.Builder, e Expr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	writeExpr(b, e)
	if paren {
		b.WriteByte(')')
	}
}

func isOr(e Expr) bool  { _, ok := e.(*Or); return ok }
func isAnd(e Expr) bool { _, ok := e.(*And); return ok }

// parenDepth is the deepest nesting of parentheses in the canonical text of e.
func parenDepth(e Expr) int {
	switch e := e.(type) {
	case *Or:
		return max(parenDepth(e.Left), parenDepth(e.Right)+b2i(isOr(e.Right)))
	case *And:
		return max(parenDepth(e.Left)+b2i(isOr(e.Left)),
			parenDepth(e.Right)+b2i(isOr(e.Right) || isAnd(e.Right)))
	case *Not:
		return 1 + parenDepth(e.X)
	case *ValuePath:
		return parenDepth(e.Filter)
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Walk calls fn for e and then, if fn returns true, for each child of e
// (And and Or: Left then Right; Not: X; ValuePath: Filter), depth first.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch e := e.(type) {
	case *And:
		Walk(e.Left, fn)
		Walk(e.Right, fn)
	case *Or:
		Walk(e.Left, fn)
		Walk(e.Right, fn)
	case *Not:
		Walk(e.X, fn)
	case *ValuePath:
		Walk(e.Filter, fn)
	}
}
