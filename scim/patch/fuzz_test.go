package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"gatehouse/scim/schema"
)

// FuzzApply decodes body as a PatchOp request, parses it and applies it to
// a realistic User and Group. Seeds: the table tests and
// testdata/fuzz/FuzzApply (Okta and Entra ID requests).
//
// Properties: no panic; every error is an *Error with a scimType of
// RFC 7644 §3.12; a successful Apply leaves its input alone and returns a
// document that has its required attributes, whose client-writable part
// re-normalizes to itself and whose server-set part is unchanged; the
// member change has no duplicates and nothing both removed and added.
func FuzzApply(f *testing.F) {
	for _, tt := range append(append([]applyTest{}, userTests...), groupTests...) {
		f.Add([]byte(body(tt.ops)))
	}
	user, group := decode(f, userDoc), decode(f, groupDoc)
	f.Fuzz(func(t *testing.T, in []byte) {
		d := json.NewDecoder(bytes.NewReader(in))
		d.UseNumber()
		var req map[string]any
		if d.Decode(&req) != nil || req == nil {
			return
		}
		ops, err := Parse(req)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		for _, tc := range []struct {
			rt  *schema.ResourceType
			doc map[string]any
		}{{schema.Users, user}, {schema.Groups, group}} {
			before := copyObject(tc.doc)
			out, mc, err := Apply(tc.rt, tc.doc, ops)
			if err != nil {
				checkFuzzError(t, err)
				continue
			}
			checkResult(t, tc.rt, tc.doc, before, out)
			checkMemberChange(t, tc.rt, mc)
		}
	})
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %T is not *Error: %v", err, err)
	}
	switch pe.ScimType {
	case InvalidPath, NoTarget, InvalidValue, Mutability, InvalidFilter, InvalidSyntax, TooMany:
	default:
		t.Fatalf("scimType %q: %v", pe.ScimType, err)
	}
	if pe.Detail == "" || len(pe.Detail) > 1000 {
		t.Fatalf("detail of %d bytes: %v", len(pe.Detail), err)
	}
}

func checkMemberChange(t *testing.T, rt *schema.ResourceType, mc MemberChange) {
	t.Helper()
	if rt.Schema.Attribute("members") == nil {
		if mc.RemoveAll || mc.Remove != nil || mc.Add != nil {
			t.Fatalf("member change %+v for a %s", mc, rt.Name)
		}
		return
	}
	if mc.RemoveAll && len(mc.Remove) > 0 {
		t.Fatalf("RemoveAll with Remove %q", mc.Remove)
	}
	seen := map[string]string{}
	for _, l := range []struct {
		name string
		ids  []string
	}{{"Remove", mc.Remove}, {"Add", mc.Add}} {
		for _, id := range l.ids {
			if id == "" {
				t.Fatalf("empty id in %s", l.name)
			}
			if prev, ok := seen[id]; ok {
				t.Fatalf("%q in %s and %s: %+v", id, prev, l.name, mc)
			}
			seen[id] = l.name
		}
	}
}
