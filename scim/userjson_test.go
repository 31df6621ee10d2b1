package scim

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"gatehouse/store"
)

// appendUser must give what encoding renderUser's document gives, for
// every combination of stored columns and attributes.
func TestAppendUserMatchesRenderUser(t *testing.T) {
	c := &call{s: New(nil, nil, Config{BaseURL: "https://gatehouse.test/"})}
	created := time.Date(2026, 11, 23, 9, 30, 0, 123456000, time.UTC)
	login := created.Add(time.Hour)
	base := store.Administrator{ID: "a1", OrgID: "o", UserName: "jane@example.com", Role: store.RoleAdministrator,
		Status: store.StatusActive, CreatedAt: created, UpdatedAt: created.Add(time.Minute), Version: 3}
	groups := []store.GroupRef{{ID: "g1", DisplayName: "Admins <&>"}, {ID: "g2", DisplayName: "Ops\u2028"}}
	for _, tc := range []struct {
		name   string
		edit   func(a *store.Administrator)
		groups []store.GroupRef
	}{
		{"minimal", func(*store.Administrator) {}, nil},
		{"every column", func(a *store.Administrator) {
			a.ExternalID, a.GivenName, a.FamilyName, a.Phone = "ext-1", "Jane", "Doe", "+1 555"
			a.Emails = store.Emails{{Value: "jane@example.com", Type: "work", Primary: true, Display: "Jane <work>"},
				{Value: "j@home.test", Type: "home"}, {Value: "bare@example.com"}}
			a.LastLoginAt, a.Status, a.Role = &login, store.StatusDeactivated, store.RoleSuperAdministrator
		}, groups},
		{"primary email column only", func(a *store.Administrator) { a.Email = "owner@example.com" }, groups[:1]},
		{"given name only, stored name parts", func(a *store.Administrator) {
			a.GivenName = "J"
			a.Attributes = store.RawJSON(`{"name":{"formatted":"J D","honorificPrefix":"Dr."}}`)
		}, nil},
		{"stored name without columns", func(a *store.Administrator) {
			a.Attributes = store.RawJSON(`{"name":{"formatted":"x"}}`)
		}, nil},
		{"stored attributes around the columns", func(a *store.Administrator) {
			a.Phone = "+1 555"
			a.Attributes = store.RawJSON(`{"$odd":1,"addresses":[{"type":"work","locality":"Köln"}],"displayName":"<b>Jane</b>",` +
				`"nickName":"jd","phoneNumbers":[{"value":"+49 1"}],"title":"a\u2028b","zz":null,` +
				`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"boss"},"employeeNumber":"7"}}`)
		}, groups},
		{"stored attributes not compact", func(a *store.Administrator) {
			a.Attributes = store.RawJSON("{ \"title\" : \"Engineer\" ,\n \"locale\": \"de-DE\" }")
		}, nil},
		{"stored members the columns replace", func(a *store.Administrator) {
			a.ExternalID = "e"
			a.Attributes = store.RawJSON(`{"schemas":["x"],"id":"other","externalId":"old","userName":"u","active":false,"meta":{},"groups":[1]}`)
		}, groups},
		{"stored members kept when their column is empty", func(a *store.Administrator) {
			a.Attributes = store.RawJSON(`{"externalId":"stored","emails":[{"value":"e@x"}],"groups":[]}`)
		}, nil},
		{"stored keys with escapes, duplicates, nesting", func(a *store.Administrator) {
			a.Attributes = store.RawJSON(`{"ti\u0074le":"x","a":"x,}\"{","b":[{"c":"]"},{}],"n":{"z":[1,{"y":"}"}]}}`)
		}, nil},
		{"stored key given twice", func(a *store.Administrator) {
			a.Attributes = store.RawJSON(`{"title":"first","title":"second"}`)
		}, nil},
		{"stored null", func(a *store.Administrator) { a.Attributes = store.RawJSON(`null`) }, nil},
		{"stored empty object", func(a *store.Administrator) { a.Attributes = store.RawJSON(` { } `) }, nil},
		{"tricky strings", func(a *store.Administrator) {
			a.UserName, a.ExternalID, a.FamilyName = "bad\xffutf8 <&>", "line\nbreak\u2029", `quote " back \`
			a.Emails = store.Emails{{Value: "\x01@x", Display: "\u2028"}}
		}, []store.GroupRef{{ID: "g\"", DisplayName: "\xfe"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := base
			tc.edit(&a)
			doc, err := c.renderUser(a, tc.groups, false)
			if err != nil {
				t.Fatal(err)
			}
			want, err := appendJSON(nil, doc)
			if err != nil {
				t.Fatal(err)
			}
			if std, _ := json.Marshal(doc); !bytes.Equal(std, want) {
				t.Fatalf("appendJSON differs from json.Marshal:\n%s\n%s", want, std)
			}
			got, err := c.appendUser(nil, a, tc.groups)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("appendUser\n got %s\nwant %s", got, want)
			}
		})
	}
}

func FuzzAppendUser(f *testing.F) {
	f.Add([]byte(`{"title":"Engineer","name":{"formatted":"x"}}`), "Given")
	f.Add([]byte(`{"a":"x,}\"{","b":[{"c":"]"}]}`), "")
	f.Add([]byte(`{"ti\u0074le":1,"title":2}`), "g")
	f.Add([]byte(`[1]`), "")
	c := &call{s: New(nil, nil, Config{BaseURL: "https://gatehouse.test"})}
	f.Fuzz(func(t *testing.T, attributes []byte, given string) {
		a := store.Administrator{ID: "1", UserName: "u", GivenName: given, Status: store.StatusActive, Attributes: attributes, Version: 1}
		doc, werr := c.renderUser(a, nil, false)
		var want []byte
		if werr == nil {
			want, werr = appendJSON(nil, doc)
		}
		got, err := c.appendUser(nil, a, nil)
		if (err == nil) != (werr == nil) {
			t.Fatalf("attributes %q: appendUser error %v, renderUser error %v", attributes, err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("attributes %q:\n got %s\nwant %s", attributes, got, want)
		}
	})
}
