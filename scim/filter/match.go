package filter

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Match reports whether the JSON object obj (as decoded by encoding/json,
// with or without UseNumber) satisfies e, following RFC 7644 §3.4.2.2:
//
//   - attribute names and schema URNs match keys case-insensitively
//     (RFC 7643 §2.1); a URN prefix selects the object stored under that URN
//     (an extension, RFC 7643 §3.3), and when obj has no such object the
//     attribute is looked up at the top level (the core schema's URN may
//     prefix core attributes); an attribute without a URN that is not at
//     the top level is looked up in the extension objects (keys beginning
//     "urn:", in sorted order), as Entra ID filters on "manager" for the
//     enterprise extension's manager (RFC 7644 §3.10 lets the URN be left
//     out when the name is unambiguous);
//   - a multi-valued attribute matches when any of its values does, and a
//     value path "emails[type eq "work"]" when any one element satisfies the
//     whole bracket filter;
//   - a complex value compared without a sub-attribute is compared through
//     its "value" sub-attribute, so Entra ID's "manager eq "id"" compares
//     manager.value;
//   - strings compare case-insensitively (Unicode simple folding) unless
//     caseExact reports the attribute as case-exact; caseExact receives the
//     full path, "emails.value" for "value" inside "emails[...]", and may be
//     nil (nothing is case-exact);
//   - numbers compare numerically, booleans only with eq and ne, and two
//     strings that both parse as RFC 3339 date-times chronologically with
//     eq, ne, gt, ge, lt and le;
//   - an absent or null attribute is not present ("pr" is false), differs
//     from every value ("ne" is true) and equals null; every other
//     comparison with it is false. A comparison between different JSON types
//     is false, and "ne" is its negation.
//
// Comparisons RFC 7644 leaves undefined (gt on a boolean, co on a number)
// are false rather than errors: a caller that wants a 400 invalidFilter
// checks the filter against the schema before matching.
func Match(e Expr, obj map[string]any, caseExact func(AttrPath) bool) bool {
	return matcher{caseExact: caseExact}.match(e, obj)
}

type matcher struct {
	caseExact func(AttrPath) bool
	// within is the value path whose elements are being matched; the
	// attribute paths inside its filter are relative to it.
	within *AttrPath
}

func (m matcher) match(e Expr, obj map[string]any) bool {
	switch e := e.(type) {
	case *And:
		return m.match(e.Left, obj) && m.match(e.Right, obj)
	case *Or:
		return m.match(e.Left, obj) || m.match(e.Right, obj)
	case *Not:
		return !m.match(e.X, obj)
	case *Compare:
		return m.compare(e, obj)
	case *ValuePath:
		inner := matcher{caseExact: m.caseExact, within: &e.Attr}
		v := lookupPath(obj, e.Attr)
		if el, ok := v.(map[string]any); ok {
			// A single-valued complex attribute is a list of one.
			return inner.match(e.Filter, el)
		}
		list, _ := v.([]any)
		for _, x := range list {
			if el, ok := x.(map[string]any); ok && inner.match(e.Filter, el) {
				return true
			}
		}
	}
	return false
}

func (m matcher) exact(a AttrPath) bool {
	if m.caseExact == nil {
		return false
	}
	if m.within != nil {
		a = AttrPath{URN: m.within.URN, Name: m.within.Name, Sub: a.Name}
	}
	return m.caseExact(a)
}

func (m matcher) compare(c *Compare, obj map[string]any) bool {
	v := lookupPath(obj, c.Attr)
	if c.Op == Pr {
		return present(v)
	}
	var vals []any
	collect(v, &vals, true)
	if len(vals) == 0 {
		return c.Op == Ne && c.Value.Kind != KindNull || c.Op == Eq && c.Value.Kind == KindNull
	}
	exact := m.exact(c.Attr)
	for _, x := range vals {
		if compareOne(c.Op, x, c.Value, exact) {
			return true
		}
	}
	return false
}

// lookupPath returns the value named by a in obj, or nil. With a
// sub-attribute and a multi-valued attribute it returns the list of the
// elements' sub-attribute values.
func lookupPath(obj map[string]any, a AttrPath) any {
	var v any
	if a.URN != "" {
		if x, ok := Lookup(obj, a.URN+":"+a.Name); ok {
			// The path is a whole extension:
			// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
			v = x
		} else if ext, ok := lookupObject(obj, a.URN); ok {
			v, _ = Lookup(ext, a.Name)
		} else {
			v, _ = Lookup(obj, a.Name)
		}
	} else if x, ok := Lookup(obj, a.Name); ok {
		v = x
	} else {
		v = lookupExtensions(obj, a.Name)
	}
	if a.Sub == "" {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		s, _ := Lookup(x, a.Sub)
		return s
	case []any:
		subs := make([]any, 0, len(x))
		for _, e := range x {
			if el, ok := e.(map[string]any); ok {
				if s, ok := Lookup(el, a.Sub); ok {
					subs = append(subs, s)
				}
			}
		}
		return subs
	}
	return nil
}

// lookupExtensions finds name in the extension objects of obj.
func lookupExtensions(obj map[string]any, name string) any {
	var urns []string
	for k, v := range obj {
		if _, ok := v.(map[string]any); ok && len(k) > 4 && strings.EqualFold(k[:4], "urn:") {
			urns = append(urns, k)
		}
	}
	slices.Sort(urns)
	for _, k := range urns {
		if v, ok := Lookup(obj[k].(map[string]any), name); ok {
			return v
		}
	}
	return nil
}

// Lookup finds key in a JSON object, case-insensitively as SCIM attribute
// names compare (RFC 7643 §2.1), preferring an exact match.
func Lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func lookupObject(m map[string]any, key string) (map[string]any, bool) {
	v, _ := Lookup(m, key)
	obj, ok := v.(map[string]any)
	return obj, ok
}

// collect appends the comparable values of v to out: the elements of a list
// (top is true only for the attribute itself, so lists of lists are not
// flattened), the "value" sub-attribute of a complex value, scalars as they
// are. nil values are skipped.
func collect(v any, out *[]any, top bool) {
	switch x := v.(type) {
	case nil:
	case []any:
		if top {
			for _, e := range x {
				collect(e, out, false)
			}
		}
	case map[string]any:
		if val, ok := Lookup(x, "value"); ok {
			if _, isMap := val.(map[string]any); !isMap {
				collect(val, out, false)
			}
		}
	default:
		*out = append(*out, v)
	}
}

// present is RFC 7644's "pr": a non-empty value, or for a complex or
// multi-valued attribute some non-empty node.
func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		for _, e := range x {
			if present(e) {
				return true
			}
		}
		return false
	case map[string]any:
		for _, e := range x {
			if present(e) {
				return true
			}
		}
		return false
	}
	return true
}

// compareOne compares one present value with the comparison value.
func compareOne(op Op, have any, want Value, exact bool) bool {
	if op == Ne {
		return !compareOne(Eq, have, want, exact)
	}
	switch want.Kind {
	case KindString:
		w, _ := want.V.(string)
		h, ok := have.(string)
		return ok && compareStrings(op, h, w, exact)
	case KindNumber:
		w, _ := want.V.(json.Number)
		h, ok := toNumber(have)
		if !ok {
			return false
		}
		wn, ok := parseNumber(string(w))
		return ok && ordered(op, h.Cmp(wn))
	case KindBool:
		w, _ := want.V.(bool)
		h, ok := have.(bool)
		return ok && op == Eq && h == w
	}
	return false
}

func compareStrings(op Op, h, w string, exact bool) bool {
	switch op {
	case Eq, Gt, Ge, Lt, Le:
		if ht, err := time.Parse(time.RFC3339Nano, h); err == nil {
			if wt, err := time.Parse(time.RFC3339Nano, w); err == nil {
				return ordered(op, ht.Compare(wt))
			}
		}
	}
	if !exact {
		h, w = fold(h), fold(w)
	}
	switch op {
	case Co:
		return strings.Contains(h, w)
	case Sw:
		return strings.HasPrefix(h, w)
	case Ew:
		return strings.HasSuffix(h, w)
	}
	return ordered(op, strings.Compare(h, w))
}

// ordered applies a comparison operator to the result of a three-way
// comparison.
func ordered(op Op, c int) bool {
	switch op {
	case Eq:
		return c == 0
	case Gt:
		return c > 0
	case Ge:
		return c >= 0
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	}
	return false
}

// fold maps every rune of s to the smallest rune of its Unicode simple
// folding orbit, so that fold(a) == fold(b) exactly when
// strings.EqualFold(a, b), and co, sw and ew agree with eq.
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// For ASCII letters the smallest rune of the orbit is the upper
		// case one ('K' < 'k' < U+212A KELVIN SIGN).
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// numberPrec is the precision of numeric comparisons: exact for integers
// of up to 77 decimal digits.
const numberPrec = 256

func toNumber(v any) (*big.Float, bool) {
	switch n := v.(type) {
	case json.Number:
		return parseNumber(string(n))
	case float64:
		if math.IsNaN(n) {
			return nil, false
		}
		return new(big.Float).SetPrec(numberPrec).SetFloat64(n), true
	case int:
		return new(big.Float).SetPrec(numberPrec).SetInt64(int64(n)), true
	case int64:
		return new(big.Float).SetPrec(numberPrec).SetInt64(n), true
	}
	return nil, false
}

func parseNumber(s string) (*big.Float, bool) {
	f, _, err := big.ParseFloat(s, 10, numberPrec, big.ToNearestEven)
	if err == nil {
		return f, true
	}
	// big.ParseFloat refuses exponents beyond int64; strconv rounds them
	// to ±Inf or 0.
	x, err := strconv.ParseFloat(s, 64)
	if (err == nil || errors.Is(err, strconv.ErrRange)) && !math.IsNaN(x) {
		return new(big.Float).SetPrec(numberPrec).SetFloat64(x), true
	}
	return nil, false
}
