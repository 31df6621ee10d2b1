package schema_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gatehouse/scim/schema"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"names are case-insensitive, output in schema spelling",
			`{"USERNAME":"a","Name":{"GIVENNAME":"A"}}`, `{"userName":"a","name":{"givenName":"A"}}`},
		{"Entra boolean strings", `{"userName":"a","active":"False"}`, `{"userName":"a","active":false}`},
		{"read-only, write-only, unknown and schemas dropped",
			`{"userName":"a","id":"x","meta":{"created":"2020-01-01T00:00:00Z"},"groups":[{"value":"g"}],"password":"p","nope":1,"schemas":["x"]}`,
			`{"userName":"a"}`},
		{"flat extension keys go under the URN",
			`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"7"}`,
			`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"}}`},
		{"bare manager id", `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m1"}}`,
			`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m1"}}}`},
		{"single value of a multi-valued attribute", `{"userName":"a","emails":{"value":"a@x.test"}}`,
			`{"userName":"a","emails":[{"value":"a@x.test"}]}`},
		{"empty values unassigned", `{"userName":"a","emails":[],"name":{},"title":null}`, `{"userName":"a"}`},
		{"read-only sub-attribute dropped", `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m","displayName":"M"}}}`,
			`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m"}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := schema.Normalize(schema.Users, decode(t, c.in))
			if err != nil {
				t.Fatal(err)
			}
			if want := decode(t, c.want); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
}

func TestNormalizeRefuses(t *testing.T) {
	for _, in := range []string{
		`{"userName":42}`,
		`{"userName":["a"]}`,
		`{"userName":"a","active":"yes"}`,
		`{"userName":"a","name":"Jane"}`,
		`{"userName":"a\u0000"}`,
		`{"userName":"a","emails":[{"value":"x","primary":"maybe"}]}`,
		`{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":"x"}`,
	} {
		_, err := schema.Normalize(schema.Users, decode(t, in))
		var ve *schema.ValueError
		if !errors.As(err, &ve) {
			t.Errorf("%s: err %v, want a ValueError", in, err)
		}
	}
}

func TestCheckRequired(t *testing.T) {
	if err := schema.CheckRequired(schema.Users, map[string]any{"title": "x"}); err == nil || !strings.Contains(err.Error(), "userName") {
		t.Errorf("missing userName: %v", err)
	}
	if err := schema.CheckRequired(schema.Groups, map[string]any{"displayName": "g"}); err != nil {
		t.Error(err)
	}
}

func TestResolve(t *testing.T) {
	for _, c := range []struct {
		urn, name, sub string
		attr, subName  string
		ext            string
	}{
		{"", "USERNAME", "", "userName", "", ""},
		{"urn:ietf:params:scim:schemas:core:2.0", "User", "", "", "", ""}, // not an extension: no attribute "User"
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value", "manager", "value", schema.EnterpriseURN},
		{"", "manager", "", "manager", "", schema.EnterpriseURN}, // Entra's unqualified name
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0", "User", "", "", "", schema.EnterpriseURN},
		{"", "emails", "type", "emails", "type", ""},
	} {
		r, ok := schema.Users.Resolve(c.urn, c.name, c.sub)
		if c.attr == "" && c.ext == "" {
			if ok {
				t.Errorf("%s:%s resolved to %+v", c.urn, c.name, r)
			}
			continue
		}
		if !ok {
			t.Errorf("%s:%s.%s did not resolve", c.urn, c.name, c.sub)
			continue
		}
		if r.Attr != nil && r.Attr.Name != c.attr || r.Attr == nil && c.attr != "" || r.Sub != nil && r.Sub.Name != c.subName {
			t.Errorf("%s:%s.%s resolved to %+v", c.urn, c.name, c.sub, r)
		}
		if ext := r.Extension; (ext == nil) != (c.ext == "") || ext != nil && ext.ID != c.ext {
			t.Errorf("%s:%s extension %v", c.urn, c.name, ext)
		}
	}
	if _, ok := schema.Users.Resolve("", "nosuch", ""); ok {
		t.Error("unknown attribute resolved")
	}
}
