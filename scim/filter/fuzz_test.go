package filter

import (
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// Seeds: the table tests below plus testdata/fuzz/FuzzParse and
// testdata/fuzz/FuzzParsePath (IdP traffic, tricky and past-crasher inputs).

// Properties: no panic; every error is an *Error with 0 <= Pos <= len(input)
// and a short message; on success the canonical text parses to an equal tree
// that prints the same text.
func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	for _, tt := range parseErrorTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := Parse(in)
		if err != nil {
			checkError(t, in, err)
			return
		}
		s := e.String()
		if !utf8.ValidString(s) {
			t.Fatalf("String() is not UTF-8: %q", s)
		}
		// The canonical text may be longer than the input (it adds spaces
		// and, for ".sub op value" after a value filter, parentheses), so
		// only the length limit is lifted when parsing it again.
		again, err := parseFilter(s, len(s))
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", in, s, err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("Parse(%q) = %q, which parses to a different tree %q", in, s, again.String())
		}
		if s2 := again.String(); s2 != s {
			t.Fatalf("Parse(%q) prints %q, then %q", in, s, s2)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, tt := range pathTests {
		f.Add(tt.in)
	}
	for _, tt := range pathErrorTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePath(in)
		if err != nil {
			checkError(t, in, err)
			return
		}
		if p.Attr.Sub != "" && (p.Filter != nil || p.Sub != "") {
			t.Fatalf("ParsePath(%q) = %#v: sub-attribute and value filter together", in, p)
		}
		if p.Sub != "" && p.Filter == nil {
			t.Fatalf("ParsePath(%q) = %#v: Sub without a value filter", in, p)
		}
		s := p.String()
		again, err := parsePath(s, len(s))
		if err != nil {
			t.Fatalf("ParsePath(%q) = %q, which does not parse: %v", in, s, err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("ParsePath(%q) = %q, which parses to a different path %q", in, s, again.String())
		}
		if s2 := again.String(); s2 != s {
			t.Fatalf("ParsePath(%q) prints %q, then %q", in, s, s2)
		}
	})
}

func checkError(t *testing.T, in string, err error) {
	t.Helper()
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %T is not *Error: %v", err, err)
	}
	if perr.Pos < 0 || perr.Pos > len(in) {
		t.Fatalf("error position %d outside [0, %d]: %v", perr.Pos, len(in), err)
	}
	// Two quoted fragments of at most maxQuoted bytes, each escaped at most
	// 4x, plus the fixed text.
	if len(perr.Msg) > 8*maxQuoted+200 {
		t.Fatalf("error message is %d bytes: %v", len(perr.Msg), err)
	}
}
