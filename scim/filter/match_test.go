package filter

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// matchDoc is a canonical User, as gatehouse stores it, with a few keys in
// other cases and types the matcher must cope with.
const matchDoc = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
	"id": "2819c223-7f76-453a-919d-413861904646",
	"externalId": "00u1ABC",
	"userName": "BJensen@example.com",
	"name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": ""},
	"displayName": "Babs Jensen",
	"title": "Tour Guide",
	"active": true,
	"emails": [
		{"value": "bjensen@example.com", "type": "work", "primary": true},
		{"value": "babs@jensen.org", "type": "home"}
	],
	"phoneNumbers": [],
	"ims": [{"value": "", "type": "aim"}],
	"x509Certificates": null,
	"EntitlementCount": 12,
	"score": 2.5,
	"big": 123456789012345678901234567890,
	"nickName": "Ǆemal",
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
		"employeeNumber": "701984",
		"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
	},
	"meta": {
		"created": "2010-01-23T04:56:22Z",
		"lastModified": "2011-05-13T04:42:34.5+02:00"
	}
}`

func decodeMatchDoc(t testing.TB) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(matchDoc))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// matchCaseExact follows gatehouse's User schema: id, externalId and
// userName are case-exact; emails.value, type and names are not.
func matchCaseExact(a AttrPath) bool {
	switch strings.ToLower(a.String()) {
	case "id", "externalid", "username", "urn:ietf:params:scim:schemas:core:2.0:user:username":
		return true
	}
	return false
}

var matchTests = []struct {
	filter string
	want   bool
}{
	// What identity providers send.
	{`userName eq "BJensen@example.com"`, true},
	{`userName eq "bjensen@example.com"`, false}, // case-exact (DESIGN.md)
	{`USERNAME eq "BJensen@example.com"`, true},  // names are case-insensitive
	{`externalId eq "00u1ABC"`, true},
	{`externalId eq "00u1abc"`, false},
	{`emails[type eq "work"].value eq "BJENSEN@example.com"`, true},
	{`emails[type eq "home"].value eq "bjensen@example.com"`, false}, // same element must match both
	{`emails[type eq "WORK" and primary eq true]`, true},
	{`id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
	{`displayName eq "babs jensen"`, true},
	{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "BJensen@example.com"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName sw "john"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`, true},
	{`employeeNumber eq "701984"`, true}, // unprefixed, found in the extension
	{`manager.displayName eq "john smith"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr`, false},

	// Strings.
	{`title co "GUIDE"`, true},
	{`title sw "tour"`, true},
	{`title ew "Guide"`, true},
	{`title ew "Tour"`, false},
	{`title co ""`, true},
	{`title gt "Tour"`, true},
	{`title lt "tour guidf"`, true},
	{`title ge "TOUR GUIDE"`, true},
	{`title le "Tour Guid"`, false},
	{`userName co "jensen"`, false}, // case-exact
	{`userName co "Jensen"`, true},
	{`nickName eq "ǅEMAL"`, true}, // Unicode simple folding: Ǆ ǅ ǆ
	{`nickName sw "ǆ"`, true},
	{`emails.value ew ".ORG"`, true},
	{`emails.value co "nobody"`, false},
	{`emails co "jensen.org"`, true}, // complex values compare through "value"

	// ne, pr and absent values.
	{`title ne "Tour Guide"`, false},
	{`title ne "x"`, true},
	{`nickName ne "x"`, true},
	{`costCenter ne "x"`, true},
	{`costCenter eq "x"`, false},
	{`costCenter eq null`, true},
	{`costCenter ne null`, false},
	{`title eq null`, false},
	{`title ne null`, true},
	{`costCenter gt "a"`, false},
	{`costCenter pr`, false},
	{`not (costCenter pr)`, true},
	{`title pr`, true},
	{`name.middleName pr`, false}, // "" is not a value
	{`name pr`, true},
	{`phoneNumbers pr`, false},
	{`x509Certificates pr`, false},
	{`ims pr`, true},                                // {"type": "aim"} is a non-empty node
	{`ims.value pr`, false},                         // but its value is empty
	{`emails.value ne "bjensen@example.com"`, true}, // the other email differs
	{`emails[type eq "home"]`, true},
	{`emails[type eq "other"]`, false},
	{`not (emails[type eq "other"])`, true},
	{`phoneNumbers[type eq "work"]`, false},
	{`name[givenName eq "barbara"]`, true}, // a single complex value is a list of one
	{`title[value eq "x"]`, false},

	// Numbers, booleans, types.
	{`entitlementCount eq 12`, true},
	{`entitlementCount eq 12.0`, true},
	{`entitlementCount eq 1.2e1`, true},
	{`entitlementCount gt 11.5`, true},
	{`entitlementCount le 11`, false},
	{`entitlementCount eq "12"`, false},
	{`entitlementCount ne "12"`, true},
	{`entitlementCount co 1`, false},
	{`score lt 3`, true},
	{`big eq 123456789012345678901234567890`, true},
	{`big eq 123456789012345678901234567891`, false},
	{`big lt 1e99999999999999999999`, true},
	{`big gt -1e99999999999999999999`, true},
	{`active eq true`, true},
	{`active eq TRUE`, true},
	{`active eq false`, false},
	{`active ne false`, true},
	{`active eq "true"`, false},
	{`active gt false`, false},
	{`title eq true`, false},
	{`emails[primary eq true].value eq "bjensen@example.com"`, true},

	// Date-times compare chronologically when both sides parse.
	{`meta.created eq "2010-01-23T05:56:22+01:00"`, true},
	{`meta.created gt "2010-01-23T04:56:21.999Z"`, true},
	{`meta.created lt "2010-01-23T04:56:22Z"`, false},
	{`meta.lastModified lt "2011-05-13T03:00:00Z"`, true}, // 02:42:34.5Z
	{`meta.lastModified gt "2011-05-13T04:00:00Z"`, false},
	{`meta.created sw "2010"`, true},
	{`meta.created gt "2010-01-23"`, true}, // not a date-time: compared as text

	// Logic.
	{`title pr and active eq true`, true},
	{`title pr and active eq false`, false},
	{`title eq "x" or active eq true`, true},
	{`not (title eq "x" or active eq true)`, false},
	{`not (not (active eq true))`, true},
}

func TestMatch(t *testing.T) {
	doc := decodeMatchDoc(t)
	for _, tt := range matchTests {
		t.Run(tt.filter, func(t *testing.T) {
			e, err := Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := Match(e, doc, matchCaseExact); got != tt.want {
				t.Errorf("Match(%s) = %v, want %v", tt.filter, got, tt.want)
			}
			if got := Match(&Not{X: e}, doc, matchCaseExact); got == tt.want {
				t.Errorf("Match(not (%s)) = %v, want %v", tt.filter, got, !tt.want)
			}
		})
	}
}

func TestMatchCaseExactPaths(t *testing.T) {
	doc := decodeMatchDoc(t)
	var got []string
	record := func(a AttrPath) bool {
		got = append(got, a.String())
		return false
	}
	e, err := Parse(`emails[type eq "work"].value eq "x" or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "y" or userName eq "z"`)
	if err != nil {
		t.Fatal(err)
	}
	Match(e, doc, record)
	want := []string{"emails.type", "emails.value", "emails.type", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "userName"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("caseExact called with %q, want %q", got, want)
	}
	// A nil caseExact makes every string case-insensitive.
	e, _ = Parse(`userName eq "bjensen@example.com"`)
	if !Match(e, doc, nil) {
		t.Error("nil caseExact: userName should match case-insensitively")
	}
}

func TestMatchGoValues(t *testing.T) {
	// Objects decoded without UseNumber, or built in Go.
	obj := map[string]any{"f": 2.5, "i": 3, "l": int64(-4), "tags": []any{"A", "b"}}
	for _, tt := range []struct {
		filter string
		want   bool
	}{
		{`f eq 2.5`, true},
		{`i ge 3`, true},
		{`l lt -3`, true},
		{`tags eq "a"`, true},
		{`tags eq "c"`, false},
		{`tags pr`, true},
	} {
		e, err := Parse(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := Match(e, obj, nil); got != tt.want {
			t.Errorf("Match(%s) = %v, want %v", tt.filter, got, tt.want)
		}
	}
}

// FuzzMatch: no panic, "not" negates, and the canonical text of a filter
// matches exactly when the filter does.
func FuzzMatch(f *testing.F) {
	for _, tt := range matchTests {
		f.Add(tt.filter)
	}
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	doc := decodeMatchDoc(f)
	var before bytes.Buffer
	if err := json.NewEncoder(&before).Encode(doc); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := Parse(in)
		if err != nil {
			return
		}
		got := Match(e, doc, matchCaseExact)
		if Match(&Not{X: e}, doc, matchCaseExact) == got {
			t.Fatalf("Match(not (%s)) == Match(%s)", in, in)
		}
		s := e.String()
		again, err := parseFilter(s, len(s))
		if err != nil {
			t.Fatalf("canonical %q does not parse: %v", s, err)
		}
		if Match(again, doc, matchCaseExact) != got {
			t.Fatalf("Match(%q) != Match(%q)", s, in)
		}
		var after bytes.Buffer
		if err := json.NewEncoder(&after).Encode(doc); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before.Bytes(), after.Bytes()) {
			t.Fatalf("Match(%q) modified the object", in)
		}
	})
}
