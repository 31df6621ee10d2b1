package patch

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"gatehouse/scim/filter"
	"gatehouse/scim/schema"
)

const (
	enterpriseURN = schema.EnterpriseURN
	gatehouseURN  = schema.GatehouseURN
)

// userDoc is a User as the SCIM layer hands it to Apply: canonical, with
// the attributes the server sets (id, meta, groups, the gatehouse
// extension, manager.displayName).
const userDoc = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"id": "2819c223-7f76-453a-919d-413861904646",
	"externalId": "00u1abcd",
	"userName": "bjensen@example.com",
	"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
	"displayName": "Babs Jensen",
	"active": true,
	"emails": [
		{"value": "bjensen@example.com", "type": "work", "primary": true},
		{"value": "babs@jensen.org", "type": "home"}
	],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
		"employeeNumber": "701984",
		"department": "Tour Operations",
		"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
	},
	"urn:gatehouse:params:scim:schemas:extension:2.0:Administrator": {"role": "Administrator", "status": "Active"},
	"groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
	"meta": {
		"resourceType": "User",
		"created": "2026-01-02T03:04:05Z",
		"lastModified": "2026-01-02T03:04:05Z",
		"location": "https://gatehouse.example/scim/v2/Users/2819c223-7f76-453a-919d-413861904646",
		"version": "W/\"3\""
	}
}`

// groupDoc is a Group as the SCIM layer hands it to Apply: without members.
const groupDoc = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
	"id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
	"externalId": "00g1okta",
	"displayName": "Tour Guides",
	"meta": {
		"resourceType": "Group",
		"created": "2026-01-02T03:04:05Z",
		"lastModified": "2026-01-02T03:04:05Z",
		"location": "https://gatehouse.example/scim/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
		"version": "W/\"7\""
	}
}`

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// mergePatch applies an RFC 7386 JSON merge patch to a copy of doc: objects
// merge, null deletes, anything else (lists too) replaces.
func mergePatch(doc, patch map[string]any) map[string]any {
	out := copyObject(doc)
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			prev, _ := out[k].(map[string]any)
			out[k] = mergePatch(prev, pv)
		default:
			out[k] = v
		}
	}
	return out
}

// body wraps a JSON array of operations in a PatchOp message.
func body(ops string) string {
	return `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ` + ops + `}`
}

func mustParse(t testing.TB, ops string) []Operation {
	t.Helper()
	parsed, err := Parse(decode(t, body(ops)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return parsed
}

func toJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// checkResult checks the properties every successful Apply must have: the
// input is unchanged, the result has its required attributes, its client-
// writable part is exactly what schema.Normalize makes of it, and the
// server-set part is the input's.
func checkResult(t testing.TB, rt *schema.ResourceType, in, before, out map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(in, before) {
		t.Fatalf("Apply modified its input:\n%s\nwas\n%s", toJSON(in), toJSON(before))
	}
	if err := schema.CheckRequired(rt, out); err != nil {
		t.Fatalf("result fails CheckRequired: %v\n%s", err, toJSON(out))
	}
	norm, err := schema.Normalize(rt, out)
	if err != nil {
		t.Fatalf("result does not normalize: %v\n%s", err, toJSON(out))
	}
	if w := writable(rt, out); !reflect.DeepEqual(norm, w) {
		t.Fatalf("result is not canonical:\n%s\nNormalize makes it\n%s", toJSON(w), toJSON(norm))
	}
	if s, s0 := serverSet(rt, out), serverSet(rt, before); !reflect.DeepEqual(s, s0) {
		t.Fatalf("server-set attributes changed:\n%s\nwere\n%s", toJSON(s), toJSON(s0))
	}
	if _, ok := filter.Lookup(out, "members"); ok && rt.Schema.Attribute("members") != nil {
		t.Fatalf("result holds members:\n%s", toJSON(out))
	}
}

// writable is doc without what schema.Normalize drops: schemas, unknown,
// read-only and write-only attributes and read-only sub-attributes.
func writable(rt *schema.ResourceType, doc map[string]any) map[string]any {
	out := map[string]any{}
	keep := func(dst map[string]any, a *schema.Attribute, v any) {
		if a == nil || a.Mutability == schema.ReadOnly || a.Mutability == schema.WriteOnly {
			return
		}
		dst[a.Name] = withoutReadOnlySubs(a, v)
	}
	for k, v := range doc {
		if ext := rt.Extension(k); ext != nil {
			m := map[string]any{}
			for ek, ev := range v.(map[string]any) {
				keep(m, ext.Attribute(ek), ev)
			}
			if len(m) > 0 {
				out[ext.ID] = m
			}
			continue
		}
		keep(out, rt.Attribute(k), v)
	}
	return out
}

func withoutReadOnlySubs(a *schema.Attribute, v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutReadOnlySubs(a, e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, sv := range x {
			if sub := a.Sub(k); sub == nil || sub.Mutability != schema.ReadOnly {
				out[k] = sv
			}
		}
		return out
	}
	return v
}

// serverSet is the part of doc that PATCH cannot change: schemas and the
// read-only attributes, extensions included.
func serverSet(rt *schema.ResourceType, doc map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		if ext := rt.Extension(k); ext != nil {
			for ek, ev := range v.(map[string]any) {
				if a := ext.Attribute(ek); a != nil && a.Mutability == schema.ReadOnly {
					out[ext.ID+":"+ek] = ev
				}
			}
			continue
		}
		if a := rt.Attribute(k); strings.EqualFold(k, "schemas") || a != nil && a.Mutability == schema.ReadOnly {
			out[k] = v
		}
	}
	return out
}
