package filter

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// ap builds an AttrPath from its written form, splitting like the parser:
// URN up to the last ":", then name "." sub.
func ap(s string) AttrPath {
	var a AttrPath
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		a.URN, s = s[:i], s[i+1:]
	}
	a.Name, a.Sub, _ = strings.Cut(s, ".")
	return a
}

// cmp builds a Compare. v is a string, json.Number, bool or nil (null); pr
// takes no v.
func cmp(attr string, op Op, v ...any) *Compare {
	c := &Compare{Attr: ap(attr), Op: op}
	if len(v) == 0 {
		return c
	}
	switch x := v[0].(type) {
	case string:
		c.Value = Value{Kind: KindString, V: x}
	case json.Number:
		c.Value = Value{Kind: KindNumber, V: x}
	case bool:
		c.Value = Value{Kind: KindBool, V: x}
	case nil:
		c.Value = Value{Kind: KindNull}
	}
	return c
}

func and(l, r Expr) Expr                { return &And{Left: l, Right: r} }
func or(l, r Expr) Expr                 { return &Or{Left: l, Right: r} }
func not(x Expr) Expr                   { return &Not{X: x} }
func vp(attr string, f Expr) *ValuePath { return &ValuePath{Attr: ap(attr), Filter: f} }

const (
	enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	coreUser   = "urn:ietf:params:scim:schemas:core:2.0:User"
)

var parseTests = []struct {
	name  string
	in    string
	want  Expr
	canon string // String() of the result; "" means same as in
}{
	// What identity providers send (notes/scim-clients.md).
	{"okta userName", `userName eq "bjensen"`, cmp("userName", Eq, "bjensen"), ""},
	{"entra test connection", `userName eq "a8f5f167-f44f-4964-8b8a-0d9e5d3c2b11"`,
		cmp("userName", Eq, "a8f5f167-f44f-4964-8b8a-0d9e5d3c2b11"), ""},
	{"entra externalId", `externalId eq "00u1"`, cmp("externalId", Eq, "00u1"), ""},
	{"entra work email value", `emails[type eq "work"].value eq "x@y.com"`,
		vp("emails", and(cmp("type", Eq, "work"), cmp("value", Eq, "x@y.com"))),
		`emails[type eq "work" and value eq "x@y.com"]`},
	{"entra group displayName", `displayName eq "Group Name"`, cmp("displayName", Eq, "Group Name"), ""},
	{"entra id and manager", `id eq "X" and manager eq "Y"`,
		and(cmp("id", Eq, "X"), cmp("manager", Eq, "Y")), ""},
	{"meta.lastModified", `meta.lastModified gt "2011-05-13T04:42:34Z"`,
		cmp("meta.lastModified", Gt, "2011-05-13T04:42:34Z"), ""},

	// Every operator.
	{"eq", `a eq "x"`, cmp("a", Eq, "x"), ""},
	{"ne", `a ne "x"`, cmp("a", Ne, "x"), ""},
	{"co", `a co "x"`, cmp("a", Co, "x"), ""},
	{"sw", `a sw "x"`, cmp("a", Sw, "x"), ""},
	{"ew", `a ew "x"`, cmp("a", Ew, "x"), ""},
	{"gt", `a gt 1`, cmp("a", Gt, json.Number("1")), ""},
	{"ge", `a ge 1`, cmp("a", Ge, json.Number("1")), ""},
	{"lt", `a lt 1`, cmp("a", Lt, json.Number("1")), ""},
	{"le", `a le 1`, cmp("a", Le, json.Number("1")), ""},
	{"pr", `title pr`, cmp("title", Pr), ""},
	{"ops are case-insensitive", `a EQ "x" AND b Pr Or NOT (c Sw "y")`,
		or(and(cmp("a", Eq, "x"), cmp("b", Pr)), not(cmp("c", Sw, "y"))),
		`a eq "x" and b pr or not (c sw "y")`},

	// Logic, precedence, grouping.
	{"and binds tighter than or", `a eq 1 or b eq 2 and c eq 3`,
		or(cmp("a", Eq, json.Number("1")), and(cmp("b", Eq, json.Number("2")), cmp("c", Eq, json.Number("3")))), ""},
	{"and before or", `a eq 1 and b eq 2 or c eq 3`,
		or(and(cmp("a", Eq, json.Number("1")), cmp("b", Eq, json.Number("2"))), cmp("c", Eq, json.Number("3"))), ""},
	{"and is left-associative", `a pr and b pr and c pr`,
		and(and(cmp("a", Pr), cmp("b", Pr)), cmp("c", Pr)), ""},
	{"or is left-associative", `a pr or b pr or c pr`,
		or(or(cmp("a", Pr), cmp("b", Pr)), cmp("c", Pr)), ""},
	{"parentheses override precedence", `(a pr or b pr) and c pr`,
		and(or(cmp("a", Pr), cmp("b", Pr)), cmp("c", Pr)), ""},
	{"right-nested and keeps its parentheses", `a pr and (b pr and c pr)`,
		and(cmp("a", Pr), and(cmp("b", Pr), cmp("c", Pr))), ""},
	{"right-nested or keeps its parentheses", `a pr or (b pr or c pr)`,
		or(cmp("a", Pr), or(cmp("b", Pr), cmp("c", Pr))), ""},
	{"redundant parentheses vanish", `((a pr)) and ((b pr))`,
		and(cmp("a", Pr), cmp("b", Pr)), `a pr and b pr`},
	{"not", `not (a eq "x")`, not(cmp("a", Eq, "x")), ""},
	{"not binds tighter than and", `not (a pr) and b pr`,
		and(not(cmp("a", Pr)), cmp("b", Pr)), ""},
	{"not without space", `not(a pr or b pr)`,
		not(or(cmp("a", Pr), cmp("b", Pr))), `not (a pr or b pr)`},
	{"double not", `not (not (a pr))`, not(not(cmp("a", Pr))), ""},
	{"rfc example", `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
		and(cmp("userType", Eq, "Employee"), or(cmp("emails", Co, "example.com"), cmp("emails.value", Co, "example.org"))), ""},
	{"rfc example not", `userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		and(cmp("userType", Ne, "Employee"), not(or(cmp("emails", Co, "example.com"), cmp("emails.value", Co, "example.org")))), ""},

	// Value paths.
	{"value path", `emails[type eq "work"]`, vp("emails", cmp("type", Eq, "work")), ""},
	{"value path with and", `emails[type eq "work" and primary eq true]`,
		vp("emails", and(cmp("type", Eq, "work"), cmp("primary", Eq, true))), ""},
	{"value path with or and not", `emails[type eq "work" or not (value ew "example.org")]`,
		vp("emails", or(cmp("type", Eq, "work"), not(cmp("value", Ew, "example.org")))), ""},
	{"value path with parentheses", `addresses[(type eq "work" or type eq "home") and primary eq true]`,
		vp("addresses", and(or(cmp("type", Eq, "work"), cmp("type", Eq, "home")), cmp("primary", Eq, true))), ""},
	{"rfc value path example", `userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
		and(cmp("userType", Eq, "Employee"), vp("emails", and(cmp("type", Eq, "work"), cmp("value", Co, "@example.com")))), ""},
	{"rfc two value paths", `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
		or(vp("emails", and(cmp("type", Eq, "work"), cmp("value", Co, "@example.com"))),
			vp("ims", and(cmp("type", Eq, "xmpp"), cmp("value", Co, "@foo.com")))), ""},
	{"value path sub with or filter", `emails[type eq "work" or type eq "home"].value pr`,
		vp("emails", and(or(cmp("type", Eq, "work"), cmp("type", Eq, "home")), cmp("value", Pr))),
		`emails[(type eq "work" or type eq "home") and value pr]`},
	{"value path sub inside logic", `emails[type eq "work"].value eq "x" and active eq true`,
		and(vp("emails", and(cmp("type", Eq, "work"), cmp("value", Eq, "x"))), cmp("active", Eq, true)),
		`emails[type eq "work" and value eq "x"] and active eq true`},
	{"members value", `members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		vp("members", cmp("value", Eq, "2819c223-7f76-453a-919d-413861904646")), ""},
	{"$ref", `members[$ref eq "https://x/Users/1"]`, vp("members", cmp("$ref", Eq, "https://x/Users/1")), ""},

	// URN-qualified attributes.
	{"enterprise employeeNumber", enterprise + `:employeeNumber eq "701984"`,
		cmp(enterprise+":employeeNumber", Eq, "701984"), ""},
	{"enterprise manager.value", enterprise + `:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`,
		&Compare{Attr: AttrPath{URN: enterprise, Name: "manager", Sub: "value"}, Op: Eq,
			Value: Value{Kind: KindString, V: "26118915-6090-4610-87e4-49d8ca9f808d"}}, ""},
	{"core givenName", coreUser + `:name.givenName sw "B"`,
		&Compare{Attr: AttrPath{URN: coreUser, Name: "name", Sub: "givenName"}, Op: Sw,
			Value: Value{Kind: KindString, V: "B"}}, ""},
	{"urn value path", coreUser + `:emails[type eq "work"]`,
		&ValuePath{Attr: AttrPath{URN: coreUser, Name: "emails"}, Filter: cmp("type", Eq, "work")}, ""},
	{"custom extension", `urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:costCenter_2 eq "x"`,
		&Compare{Attr: AttrPath{URN: "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User", Name: "costCenter_2"},
			Op: Eq, Value: Value{Kind: KindString, V: "x"}}, ""},
	{"attribute names with - and digits", `x-y_9 pr`, cmp("x-y_9", Pr), ""},

	// Values.
	{"escapes", `a eq "q\" b\\ s\/ \b\f\n\r\t"`, cmp("a", Eq, "q\" b\\ s/ \b\f\n\r\t"), `a eq "q\" b\\ s/ \b\f\n\r\t"`},
	{"unicode escape", `a eq "caf\u00e9 \u00E9"`, cmp("a", Eq, "café é"), `a eq "café é"`},
	{"surrogate pair", `a eq "\ud83d\ude00"`, cmp("a", Eq, "😀"), `a eq "😀"`},
	{"raw unicode", `name.familyName eq "Müller 山田"`, cmp("name.familyName", Eq, "Müller 山田"), ""},
	{"control escape", `a eq "\u0001\u001F"`, cmp("a", Eq, "\x01\x1f"), `a eq "\u0001\u001f"`},
	{"empty string", `a eq ""`, cmp("a", Eq, ""), ""},
	{"string with keywords and brackets", `a eq "x) or (b eq [1]"`, cmp("a", Eq, "x) or (b eq [1]"), ""},
	{"zero", `a eq 0`, cmp("a", Eq, json.Number("0")), ""},
	{"negative", `a gt -12`, cmp("a", Gt, json.Number("-12")), ""},
	{"decimal", `a lt 3.25`, cmp("a", Lt, json.Number("3.25")), ""},
	{"exponent", `a le -1.5E+10`, cmp("a", Le, json.Number("-1.5E+10")), ""},
	{"exponent lower", `a ge 2e-3`, cmp("a", Ge, json.Number("2e-3")), ""},
	{"true", `active eq true`, cmp("active", Eq, true), ""},
	{"false", `active eq false`, cmp("active", Eq, false), ""},
	{"Entra True", `active eq True`, cmp("active", Eq, true), `active eq true`},
	{"FALSE", `active ne FALSE`, cmp("active", Ne, false), `active ne false`},
	{"null", `manager eq null`, cmp("manager", Eq, nil), ""},
	{"Null", `manager ne Null`, cmp("manager", Ne, nil), `manager ne null`},

	// Whitespace leniency.
	{"extra spaces and tabs", " \tuserName  eq\t\t\"b\"   and  ( x pr )  ",
		and(cmp("userName", Eq, "b"), cmp("x", Pr)), `userName eq "b" and x pr`},
	{"no space inside brackets and parentheses", `(emails[ type eq "work" ])and(x pr)`,
		and(vp("emails", cmp("type", Eq, "work")), cmp("x", Pr)), `emails[type eq "work"] and x pr`},
	{"no space before a string", `a eq"x"`, cmp("a", Eq, "x"), `a eq "x"`},
	{"space before bracket", `emails [type eq "work"]`, vp("emails", cmp("type", Eq, "work")), `emails[type eq "work"]`},

	// Keywords are only keywords where the grammar expects them.
	{"attribute called not", `not eq "x"`, cmp("not", Eq, "x"), ""},
	{"attribute called and", `and pr and or pr`, and(cmp("and", Pr), cmp("or", Pr)), ""},
	{"attribute called pr", `pr pr`, cmp("pr", Pr), ""},
	{"value path called not", `not[type pr]`, vp("not", cmp("type", Pr)), ""},
	{"attribute starting with a keyword", `order eq 1 or notes pr`,
		or(cmp("order", Eq, json.Number("1")), cmp("notes", Pr)), ""},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q)\n got  %#v\n want %#v", tt.in, got, tt.want)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			if s := got.String(); s != canon {
				t.Errorf("String() = %q, want %q", s, canon)
			}
			again, err := Parse(got.String())
			if err != nil {
				t.Fatalf("Parse(String()): %v", err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("round trip changed the tree: %v", again)
			}
		})
	}
}

var parseErrorTests = []struct {
	name string
	in   string
	pos  int
	msg  string // substring of Error.Msg
}{
	{"empty", ``, 0, "empty filter"},
	{"blank", "  \t ", 0, "empty filter"},
	{"unknown operator", `userName equals "bjensen"`, 9, `expected a comparison operator after "userName", found "equals"`},
	{"symbolic operator", `userName == "bjensen"`, 9, "operators are words"},
	{"symbolic operator glued", `userName=="bjensen"`, 8, `invalid character "="`},
	{"missing operator", `userName`, 8, `expected a comparison operator after "userName", found the end of the filter`},
	{"value without operator", `userName "bjensen"`, 9, `expected a comparison operator after "userName", found the string "bjensen"`},
	{"missing value", `userName eq`, 11, `expected a value after "eq", found the end of the filter`},
	{"missing value before and", `userName eq and x pr`, 12, `invalid value "and"`},
	{"missing value before paren", `(userName eq)`, 12, `expected a value after "eq", found ")"`},
	{"unquoted string", `userName eq bjensen`, 12, `invalid value "bjensen" after "eq"`},
	{"single quotes", `userName eq 'bjensen'`, 12, `invalid value "'bjensen'"`},
	{"unterminated string", `userName eq "bjensen`, 12, "unterminated string"},
	{"unterminated after escape", `a eq "x\`, 5, "unterminated string"},
	{"unterminated after escaped quote", `a eq "x\"`, 5, "unterminated string"},
	{"invalid escape", `a eq "x\q"`, 7, `invalid escape \q in string`},
	{"short unicode escape", `a eq "\u12"`, 6, `\u must be followed by four hexadecimal digits`},
	{"non-hex unicode escape", `a eq "\u12g4"`, 6, `four hexadecimal digits`},
	{"lone high surrogate", `a eq "\ud83d"`, 6, `unpaired UTF-16 surrogate \ud83d`},
	{"high surrogate then letter", `a eq "\ud83dx"`, 6, "unpaired UTF-16 surrogate"},
	{"lone low surrogate", `a eq "\ude00\ud83d"`, 6, "unpaired UTF-16 surrogate"},
	{"invalid escape of a control character", "a eq \"\\\x01\"", 6, `invalid escape "\\\x01"`},
	{"raw control character", "a eq \"x\ny\"", 7, "control character"},
	{"invalid UTF-8", "a eq \"x\xffy\"", 7, "invalid UTF-8"},
	{"invalid UTF-8 in name", "\xc3 pr", 0, "invalid UTF-8"},
	{"bad number leading zero", `a eq 01`, 5, `invalid value "01"`},
	{"bad number plus", `a eq +1`, 5, `invalid value "+1"`},
	{"bad number dot", `a eq 1.`, 5, `invalid value "1."`},
	{"bad number exponent", `a eq 1e`, 5, `invalid value "1e"`},
	{"number glued to keyword", `a eq 1and b pr`, 5, `invalid value "1and"`},
	{"pr with value", `title pr "x"`, 9, `the "pr" operator takes no value, found the string "x"`},
	{"pr with number", `title pr 1`, 9, `"pr" operator takes no value`},
	{"pr with true", `title pr true`, 9, `"pr" operator takes no value`},
	{"unbalanced open", `(a pr`, 5, `expected ")" to close the "(" at position 0, found the end of the filter`},
	{"unbalanced open nested", `a pr and ((b pr)`, 16, `expected ")" to close the "(" at position 9`},
	{"unbalanced close", `a pr)`, 4, `unexpected ")" without a matching "("`},
	{"empty parentheses", `()`, 1, `expected an attribute name, found ")"`},
	{"unbalanced bracket", `emails[type eq "work"`, 21, `expected "]" to close the "[" at position 6`},
	{"stray close bracket", `emails pr]`, 9, `unexpected "]" without a matching "["`},
	{"double close bracket", `emails[type pr]]`, 15, `unexpected "]"`},
	{"paren closed by bracket", `(a pr]`, 5, `expected "and", "or" or ")", found "]"`},
	{"bracket closed by paren", `emails[a pr)]`, 11, `expected "and", "or" or "]", found ")"`},
	{"nested brackets", `emails[type[value pr] pr]`, 11, "value filters cannot be nested"},
	{"empty brackets", `emails[]`, 7, `expected an attribute name, found "]"`},
	{"urn inside brackets", `emails[` + coreUser + `:emails.type pr]`, 7, "must be a plain sub-attribute name"},
	{"sub-attribute inside brackets", `emails[emails.type pr]`, 7, "must be a plain sub-attribute name"},
	{"bracket after sub-attribute", `name.givenName[x pr]`, 14, `cannot follow the sub-attribute "name.givenName"`},
	{"value path then operator", `emails[type pr] eq "x"`, 16, `expected "and", "or" or the end of the filter, found "eq"`},
	{"value path sub without operator", `emails[type pr].value`, 21, `expected a comparison operator after "value"`},
	{"value path empty sub", `emails[type pr]. eq "x"`, 16, `expected a sub-attribute name after ".", found a space`},
	{"value path sub with dot", `emails[type pr].value.x eq 1`, 21, "at most one sub-attribute"},
	{"value path sub with bracket", `emails[type pr].value[x pr]`, 21, `expected a comparison operator after "value", found "["`},
	{"trailing garbage", `userName eq "bjensen" extra`, 22, `expected "and", "or" or the end of the filter, found "extra"`},
	{"trailing value", `userName eq "a" "b"`, 16, `found the string "b"`},
	{"dangling and", `a pr and`, 8, "expected an attribute name, found the end of the filter"},
	{"dangling or", `a pr or `, 8, "expected an attribute name, found the end of the filter"},
	{"leading and", `and`, 3, `expected a comparison operator after "and"`},
	{"not without parentheses", `not a pr`, 4, `expected "(" after "not", found "a"`},
	{"not at end", `not`, 3, `expected "(" after "not", found the end of the filter`},
	{"string as attribute", `"userName" eq "x"`, 0, `expected an attribute name, found the string "userName"`},
	{"number as attribute", `1 eq 1`, 0, "must start with a letter"},
	{"too many sub-attributes", `a.b.c pr`, 3, "at most one sub-attribute"},
	{"empty sub-attribute", `name. pr`, 5, `expected a sub-attribute name after "."`},
	{"leading dot", `.name pr`, 0, `expected an attribute name, found ".name"`},
	{"bad character in name", `user*Name pr`, 4, `invalid character "*"`},
	{"dollar inside name", `a$ref pr`, 1, `invalid character "$"`},
	{"non-ASCII name", `nämе pr`, 1, `invalid character "ä"`},
	{"non-URN prefix", `foo:bar pr`, 0, "is not a schema URN"},
	{"URN without attribute", enterprise + `: pr`, len(enterprise) + 1, "expected an attribute name after the schema URN"},
	{"URN with empty segment", `urn:ietf::x:name pr`, 9, "empty segment in schema URN"},
	{"URN with bad character", `urn:ietf:a/b:name pr`, 10, `invalid character "/" in schema URN`},
	{"open bracket as attribute", `[a pr]`, 0, `expected an attribute name, found "["`},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.in, e)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if perr.Pos != tt.pos || !strings.Contains(perr.Msg, tt.msg) {
				t.Errorf("Parse(%q) error = %d %q, want %d containing %q", tt.in, perr.Pos, perr.Msg, tt.pos, tt.msg)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	_, err := Parse(`userName equals "bjensen"`)
	const want = `filter: at position 9: expected a comparison operator after "userName", found "equals"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, err = ParsePath(`emails[type eq "work"]].x`)
	const wantPath = `filter: invalid path at position 22: expected "." and a sub-attribute name, or the end of the path, found "]"`
	if err == nil || err.Error() != wantPath {
		t.Errorf("got %v, want %s", err, wantPath)
	}
}

// Error messages go to SCIM clients: they must not echo long stretches of
// the input.
func TestErrorEchoIsBounded(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, in := range []string{
		long + " equals 1",
		"a eq " + long,
		"a " + long,
		`a eq "` + long,
		`a eq 1 "` + long + `"`,
		"urn:" + long + ":/a pr",
		"a pr " + long,
		long + "." + long + "." + long,
	} {
		_, err := Parse(in)
		if err == nil {
			t.Fatalf("Parse(%.30q...) succeeded", in)
		}
		if n := strings.Count(err.Error(), "x"); n > 2*maxQuoted {
			t.Errorf("error echoes %d bytes of input: %v", n, err)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Run("length", func(t *testing.T) {
		ok := "a eq \"" + strings.Repeat("x", MaxFilterLen-7) + "\""
		if _, err := Parse(ok); err != nil {
			t.Errorf("%d bytes: %v", len(ok), err)
		}
		_, err := Parse(ok + " ")
		var perr *Error
		if !errors.As(err, &perr) || perr.Pos != MaxFilterLen || !strings.Contains(perr.Msg, "longer than 4096 bytes") {
			t.Errorf("%d bytes: %v", len(ok)+1, err)
		}
	})
	t.Run("depth", func(t *testing.T) {
		nest := func(n int, open, close string) string {
			return strings.Repeat(open, n) + "a pr" + strings.Repeat(close, n)
		}
		for _, tt := range []struct {
			open, close string
			n           int // largest accepted repetition
		}{
			{"(", ")", MaxDepth},
			{"not (", ")", MaxDepth},
			{"not((", "))", MaxDepth / 2},
		} {
			if _, err := Parse(nest(tt.n, tt.open, tt.close)); err != nil {
				t.Errorf("%q x %d: %v", tt.open, tt.n, err)
			}
			_, err := Parse(nest(tt.n+1, tt.open, tt.close))
			var perr *Error
			if !errors.As(err, &perr) || !strings.Contains(perr.Msg, "nested too deeply") {
				t.Errorf("%q x %d: %v", tt.open, tt.n+1, err)
			}
		}
		// Parentheses inside a value filter count with those around it.
		in := strings.Repeat("(", MaxDepth) + `emails[(a pr)]` + strings.Repeat(")", MaxDepth)
		var perr *Error
		if _, err := Parse(in); !errors.As(err, &perr) || perr.Pos != MaxDepth+7 {
			t.Errorf("33 levels across a bracket: %v", err)
		}
	})
	t.Run("deep input never overflows", func(t *testing.T) {
		for _, in := range []string{
			strings.Repeat("(", MaxFilterLen),
			strings.Repeat("not (", MaxFilterLen/5),
			strings.Repeat("a[", MaxFilterLen/2),
		} {
			if _, err := Parse(in); err == nil {
				t.Errorf("Parse(%.20q...) succeeded", in)
			}
		}
	})
	t.Run("long chains are fine", func(t *testing.T) {
		in := "a pr" + strings.Repeat(" and a pr", (MaxFilterLen-4)/9)
		e, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if e.String() != in {
			t.Errorf("chain did not round-trip")
		}
	})
	t.Run("value path sub keeps the canonical form parseable", func(t *testing.T) {
		// 31 parentheses, then an "or" bracket filter with a sub-attribute:
		// its canonical form needs a 32nd level, which is allowed...
		in := strings.Repeat("(", MaxDepth-1) + `emails[a pr or b pr].value pr` + strings.Repeat(")", MaxDepth-1)
		e, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(e.String()); err != nil {
			t.Fatalf("canonical form: %v", err)
		}
		// ...but a 33rd is not.
		_, err = Parse("(" + in + ")")
		var perr *Error
		if !errors.As(err, &perr) || !strings.Contains(perr.Msg, "nested too deeply") {
			t.Errorf("got %v, want a nesting error", err)
		}
	})
}

var pathTests = []struct {
	in    string
	want  Path
	canon string
}{
	{`members`, Path{Attr: ap("members")}, ""},
	{`active`, Path{Attr: ap("active")}, ""},
	{`name.familyName`, Path{Attr: ap("name.familyName")}, ""},
	{`emails[type eq "work"].value`, Path{Attr: ap("emails"), Filter: cmp("type", Eq, "work"), Sub: "value"}, ""},
	{`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		Path{Attr: ap("members"), Filter: cmp("value", Eq, "2819c223-7f76-453a-919d-413861904646")}, ""},
	{enterprise + `:manager`, Path{Attr: AttrPath{URN: enterprise, Name: "manager"}}, ""},
	{enterprise + `:employeeNumber`, Path{Attr: AttrPath{URN: enterprise, Name: "employeeNumber"}}, ""},
	{enterprise + `:manager.value`, Path{Attr: AttrPath{URN: enterprise, Name: "manager", Sub: "value"}}, ""},
	{`addresses[type eq "work"].streetAddress`,
		Path{Attr: ap("addresses"), Filter: cmp("type", Eq, "work"), Sub: "streetAddress"}, ""},
	{coreUser + `:emails[type eq "work"].value`,
		Path{Attr: AttrPath{URN: coreUser, Name: "emails"}, Filter: cmp("type", Eq, "work"), Sub: "value"}, ""},
	{`emails[type eq "work" and primary eq True]`,
		Path{Attr: ap("emails"), Filter: and(cmp("type", Eq, "work"), cmp("primary", Eq, true))},
		`emails[type eq "work" and primary eq true]`},
	{`members[not (value eq "1" or value eq "2")]`,
		Path{Attr: ap("members"), Filter: not(or(cmp("value", Eq, "1"), cmp("value", Eq, "2")))}, ""},
	{` members `, Path{Attr: ap("members")}, `members`},
	{`emails[ type EQ "work" ].display`, Path{Attr: ap("emails"), Filter: cmp("type", Eq, "work"), Sub: "display"},
		`emails[type eq "work"].display`},
	{`members[$ref pr].$ref`, Path{Attr: ap("members"), Filter: cmp("$ref", Pr), Sub: "$ref"}, ""},
	{enterprise, Path{Attr: AttrPath{URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0", Name: "User"}}, ""},
}

func TestParsePath(t *testing.T) {
	for _, tt := range pathTests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePath(tt.in)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePath(%q)\n got  %#v\n want %#v", tt.in, got, tt.want)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			if s := got.String(); s != canon {
				t.Errorf("String() = %q, want %q", s, canon)
			}
		})
	}
}

var pathErrorTests = []struct {
	name string
	in   string
	pos  int
	msg  string
}{
	{"empty", ``, 0, "empty path"},
	{"blank", `  `, 0, "empty path"},
	{"double close bracket", `emails[type eq "work"]].x`, 22, `found "]"`},
	{"trailing junk", `members junk`, 8, `expected "[" or the end of the path, found "junk"`},
	{"filter outside brackets", `members eq "x"`, 8, `found "eq"`},
	{"junk after sub", `emails[type eq "work"].value x`, 29, `found "x"`},
	{"space before sub", `emails[type eq "work"] .value`, 23, `found ".value"`},
	{"unclosed bracket", `members[value eq "x"`, 20, `expected "]" to close the "[" at position 7, found the end of the path`},
	{"empty bracket", `members[]`, 8, `expected an attribute name, found "]"`},
	{"nested brackets", `members[value[x pr] pr]`, 13, "cannot be nested"},
	{"two sub-attributes", `name.familyName.x`, 15, "at most one sub-attribute"},
	{"sub after bracket with dot", `emails[type pr].value.x`, 21, "at most one sub-attribute"},
	{"empty sub after bracket", `emails[type pr].`, 16, `expected a sub-attribute name after ".", found the end of the path`},
	{"bracket after sub", `name.givenName[x pr]`, 14, "cannot follow the sub-attribute"},
	{"quoted", `"members"`, 0, `found the string "members"`},
	{"URN only with colon", enterprise + `:`, len(enterprise) + 1, "expected an attribute name after the schema URN"},
	{"too long", strings.Repeat("a", MaxPathLen+1), MaxPathLen, "path is longer than 1024 bytes"},
	{"invalid UTF-8", "na\xffme", 2, "invalid UTF-8"},
	{"parenthesis", `(members)`, 0, `expected an attribute name, found "("`},
	{"pr with value in bracket", `members[value pr "x"]`, 17, `"pr" operator takes no value`},
}

func TestParsePathErrors(t *testing.T) {
	for _, tt := range pathErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePath(tt.in)
			if err == nil {
				t.Fatalf("ParsePath(%q) = %v, want an error", tt.in, got)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if perr.Pos != tt.pos || !strings.Contains(perr.Msg, tt.msg) {
				t.Errorf("ParsePath(%q) error = %d %q, want %d containing %q", tt.in, perr.Pos, perr.Msg, tt.pos, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "filter: invalid path at position ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

func TestKey(t *testing.T) {
	for _, tt := range []struct{ in, key string }{
		{"userName", "username"},
		{"name.familyName", "name.familyname"},
		{enterprise + ":employeeNumber", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber"},
	} {
		if k := ap(tt.in).Key(); k != tt.key {
			t.Errorf("Key(%q) = %q, want %q", tt.in, k, tt.key)
		}
	}
}

func TestWalk(t *testing.T) {
	e, err := Parse(`a pr and not (emails[type eq "work" or b pr]) or c pr`)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	Walk(e, func(e Expr) bool {
		if c, ok := e.(*Compare); ok {
			seen = append(seen, c.Attr.Name)
		}
		_, isValuePath := e.(*ValuePath)
		return !isValuePath // do not look inside value filters
	})
	if got := strings.Join(seen, ","); got != "a,c" {
		t.Errorf("visited %s, want a,c", got)
	}
	n := 0
	Walk(e, func(Expr) bool { n++; return true })
	if n != 9 { // or, and, a, not, valuepath, or, type, b, c
		t.Errorf("visited %d nodes, want 9", n)
	}
}

func TestValueString(t *testing.T) {
	for _, tt := range []struct {
		v    Value
		want string
	}{
		{Value{}, ""},
		{Value{Kind: KindNull}, "null"},
		{Value{Kind: KindBool, V: true}, "true"},
		{Value{Kind: KindNumber, V: json.Number("-1.5e3")}, "-1.5e3"},
		{Value{Kind: KindString, V: "a\"\\\x00\x7fé"}, `"a\"\\\u0000` + "\x7fé\""},
	} {
		if s := tt.v.String(); s != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.v, s, tt.want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bb := range []struct{ name, in string }{
		{"userName", `userName eq "bjensen"`},
		{"entraEmail", `emails[type eq "work"].value eq "bjensen@example.com"`},
		{"idAndManager", `id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "26118915-6090-4610-87e4-49d8ca9f808d"`},
		// The largest accepted input: parse time stays linear.
		{"maxLengthChain", strings.Repeat(`a eq "x" or `, MaxFilterLen/12-1) + `a eq "x"`},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.in)))
			for b.Loop() {
				if _, err := Parse(bb.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
