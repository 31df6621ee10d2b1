package provlog

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"top level", `{"userName":"ann","password":"s3cret!"}`, `{"userName":"ann","password":"[redacted]"}`},
		{"case", `{"PassWord":"a","PASSWORD":"b"}`, `{"PassWord":"[redacted]","PASSWORD":"[redacted]"}`},
		{"urn name", `{"urn:ietf:params:scim:schemas:core:2.0:User:password":"x"}`, `{"urn:ietf:params:scim:schemas:core:2.0:User:password":"[redacted]"}`},
		{"escaped name", `{"pass\u0077ord":"x"}`, `{"pass\u0077ord":"[redacted]"}`},
		{"nested", `{"a":[{"b":{"password":{"deep":"x"}}}]}`, `{"a":[{"b":{"password":"[redacted]"}}]}`},
		{"tokens", `{"bearerToken":"t","client_secret":"s","apiKey":"k","Authorization":"Bearer x","n":1}`,
			`{"bearerToken":"[redacted]","client_secret":"[redacted]","apiKey":"[redacted]","Authorization":"[redacted]","n":1}`},
		{"patch path", `{"Operations":[{"op":"replace","path":"password","value":"x"}]}`,
			`{"Operations":[{"op":"replace","path":"password","value":"[redacted]"}]}`},
		{"patch value first", `{"Operations":[{"value":"x","Path":"PASSWORD","op":"Replace"}]}`,
			`{"Operations":[{"value":"[redacted]","Path":"PASSWORD","op":"Replace"}]}`},
		{"patch urn path", `{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User:password","VALUE":["x"]}]}`,
			`{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User:password","VALUE":"[redacted]"}]}`},
		{"patch value object", `{"Operations":[{"op":"replace","value":{"active":true,"password":"x"}}]}`,
			`{"Operations":[{"op":"replace","value":{"active":true,"password":"[redacted]"}}]}`},
		{"patch value object then later secret", `{"value":{"password":"x","token":"y"},"path":"password","secret":"z"}`,
			`{"value":"[redacted]","path":"password","secret":"[redacted]"}`},
		{"patch other path", `{"op":"replace","path":"active","value":false}`, `{"op":"replace","path":"active","value":false}`},
		{"spacing kept", "{ \"password\" :\n \"x\" ,\"a\":[ 1 , 2 ] }", "{ \"password\" :\n \"[redacted]\" ,\"a\":[ 1 , 2 ] }"},
		{"string with quote", `{"a":"say \"password\": x","password":"p\"q"}`, `{"a":"say \"password\": x","password":"[redacted]"}`},
		{"not an object", `["password"]`, `["password"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Redact([]byte(tc.in))
			if err != nil || string(got) != tc.want {
				t.Fatalf("Redact(%s) = %s, %v\nwant %s", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{`{"password":"x"`, `{"password":"x"} trailing`, `password=x`, ``, `{"a":tru}`} {
		if got, err := Redact([]byte(bad)); err == nil {
			t.Errorf("Redact(%q) = %q, want a refusal", bad, got)
		}
	}
}

func TestEntry(t *testing.T) {
	e := Entry(Exchange{OrgID: "o", Method: "POST", Path: "/scim/v2/Users", Status: 201,
		Request:  []byte(`{"userName":"ann","password":"hunter2"}`),
		Response: []byte(`{"id":"u1","userName":"ann"}`)})
	if e.ResourceID != "u1" || e.UserName != "ann" || strings.Contains(e.Request, "hunter2") || e.RequestSize != 39 {
		t.Fatalf("entry %+v", e)
	}
	// A body that is not JSON is not kept: its secrets cannot be found.
	e = Entry(Exchange{OrgID: "o", Method: "POST", Path: "/scim/v2/Users", Status: 400, Request: []byte(`{"password":"hunter2",`)})
	if e.Request != "" || e.RequestSize != 22 {
		t.Fatalf("entry %+v", e)
	}
	// The cap, on a character boundary, after redaction.
	big := `{"password":"hunter2","displayName":"` + strings.Repeat("é", BodyCap) + `"}`
	e = Entry(Exchange{OrgID: "o", Method: "POST", Path: "/scim/v2/Groups", Status: 400, Request: []byte(big)})
	if !e.RequestTruncated || len(e.Request) > BodyCap || len(e.Request) < BodyCap-1 || strings.Contains(e.Request, "hunter2") ||
		!strings.HasPrefix(e.Request, `{"password":"[redacted]"`) || strings.ContainsRune(e.Request, '\uFFFD') {
		t.Fatalf("capped request: %d bytes, truncated %v, starts %.40s", len(e.Request), e.RequestTruncated, e.Request)
	}
	// POST .search: the filter is the body's.
	e = Entry(Exchange{OrgID: "o", Method: "POST", Path: "/scim/v2/Users/.search", Status: 200,
		Request: []byte(`{"filter":"userName eq \"ann\""}`)})
	if e.Filter != `userName eq "ann"` {
		t.Fatalf("filter %q", e.Filter)
	}
}

// FuzzRedact: for any JSON document, Redact succeeds, keeps it JSON, and
// leaves no secret: no member with a secret's name and no PATCH
// operation's value with a secret's path holds anything but the mark.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{`{"password":"x"}`, `{"Operations":[{"value":{"a":"x"},"path":"password"}]}`,
		`{"a":[{"b":{"token":1}}]}`, `[1,"a",null,true,{"p\u0061ssword":[]}]`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := Redact(doc)
		if !json.Valid(doc) {
			if err == nil {
				t.Fatalf("Redact took %q", doc)
			}
			return
		}
		if err != nil {
			if strings.Count(string(doc), "[")+strings.Count(string(doc), "{") > maxRedactDepth {
				return // deeper than any SCIM document
			}
			t.Fatalf("Redact(%q): %v", doc, err)
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(string(out)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("Redact(%q) = %q, not JSON: %v", doc, out, err)
		}
		if leak := findSecret(v); leak != "" {
			t.Fatalf("Redact(%q) = %q leaves %s", doc, out, leak)
		}
	})
}

func findSecret(v any) string {
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			if l := findSecret(x); l != "" {
				return l
			}
		}
	case map[string]any:
		var path, value any
		for k, x := range v {
			if isSecretName(k) && x != "[redacted]" {
				return "member " + k
			}
			if strings.EqualFold(k, "path") {
				path = x
			}
			if strings.EqualFold(k, "value") {
				value = x
			}
			if l := findSecret(x); l != "" {
				return l
			}
		}
		if p, ok := path.(string); ok && isSecretName(p) && value != nil && value != "[redacted]" {
			return "the value of path " + p
		}
	}
	return ""
}
