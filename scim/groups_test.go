package scim_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"gatehouse/store"
	"gatehouse/store/storetest"
)

const patchOp = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`

func patchBody(ops string) string { return `{` + patchOp + `,"Operations":[` + ops + `]}` }

func TestGroupMembership(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, st *store.SQL) {
		e := newEnv(t, st)
		var ids []string
		for i := range 5 {
			ids = append(ids, e.do("POST", "/Users", user(fmt.Sprintf("m%d@acme.test", i))).must(t, 201).str("id"))
		}
		// Okta group push: create with no members.
		g := e.do("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": "Engineering", "members": []any{}}).must(t, 201)
		gid := g.str("id")
		members := func() []string {
			t.Helper()
			r := e.do("GET", "/Groups/"+gid, nil).must(t, 200)
			var out []string
			list, _ := r.body["members"].([]any)
			for _, m := range list {
				out = append(out, m.(map[string]any)["value"].(string))
			}
			return out
		}
		// Add a list; answer 204.
		e.do("PATCH", "/Groups/"+gid, patchBody(fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q},{"value":%q},{"value":%q}]}`, ids[0], ids[1], ids[2]))).must(t, 204)
		if got := members(); len(got) != 3 {
			t.Fatalf("members after add: %v", got)
		}
		// Okta: rename with id in the map, then remove by filter.
		e.do("PATCH", "/Groups/"+gid, patchBody(fmt.Sprintf(`{"op":"replace","value":{"id":%q,"displayName":"Eng"}},{"op":"remove","path":"members[value eq \"%s\"]"}`, gid, ids[0]))).must(t, 204)
		if got := members(); len(got) != 2 || got[0] != ids[1] {
			t.Fatalf("members after filtered remove: %v", got)
		}
		// Entra without the flag: Remove with a value list.
		e.do("PATCH", "/Groups/"+gid, patchBody(fmt.Sprintf(`{"op":"Remove","path":"members","value":[{"value":%q}]}`, ids[1]))).must(t, 204)
		if got := members(); len(got) != 1 || got[0] != ids[2] {
			t.Fatalf("members after value-list remove: %v", got)
		}
		// A member that is not a user: 400, nothing changes (the rename in the same PATCH neither).
		before := storetest.TakeSnapshot(t, st)
		e.do("PATCH", "/Groups/"+gid, patchBody(`{"op":"replace","path":"displayName","value":"X"},{"op":"add","path":"members","value":[{"value":"no-such-user"}]}`)).must(t, 400)
		storetest.AssertUnchanged(t, st, before)
		// Replace all members.
		e.do("PATCH", "/Groups/"+gid, patchBody(fmt.Sprintf(`{"op":"replace","path":"members","value":[{"value":%q},{"value":%q}]}`, ids[3], ids[4]))).must(t, 204)
		if got := members(); len(got) != 2 || got[0] != ids[3] {
			t.Fatalf("members after replace: %v", got)
		}
		// Entra's lookup: displayName eq, members excluded.
		r := e.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "eng"`), nil).must(t, 200)
		if r.body["totalResults"] != float64(1) || lookup(r.body, "Resources.0.members") != nil || r.str("Resources.0.displayName") != "Eng" {
			t.Fatalf("displayName lookup: %s", r.raw)
		}
		// The user shows its group.
		u := e.do("GET", "/Users/"+ids[3], nil).must(t, 200)
		if u.str("groups.0.value") != gid || u.str("groups.0.display") != "Eng" {
			t.Errorf("user groups: %s", u.raw)
		}
		// Remove all, then delete.
		e.do("PATCH", "/Groups/"+gid, patchBody(`{"op":"remove","path":"members"}`)).must(t, 204)
		if got := members(); len(got) != 0 {
			t.Fatalf("members after remove all: %v", got)
		}
		e.do("DELETE", "/Groups/"+gid, nil).must(t, 204)
		e.do("GET", "/Groups/"+gid, nil).must(t, 404)
	})
}

// Thousands of members in one PATCH.
func TestLargeMemberPatch(t *testing.T) {
	st := storetest.SQLite(t)
	e := newEnv(t, st)
	ids := storetest.SeedAdministrators(t, st, e.org.ID, "seed", 3000)
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"value":%q}`, id)
	}
	gid := e.do("POST", "/Groups", map[string]any{"displayName": "big"}).must(t, 201).str("id")
	e.do("PATCH", "/Groups/"+gid, patchBody(`{"op":"add","path":"members","value":[`+b.String()+`]}`)).must(t, 204)
	_, total, err := st.GroupMembers(t.Context(), e.org.ID, gid, store.Page{})
	if err != nil || total != 3000 {
		t.Fatalf("members: %d, %v", total, err)
	}
}

// The designated super-administrator group and roles decide the role.
func TestRoles(t *testing.T) {
	st := storetest.SQLite(t)
	e := newEnv(t, st)
	if _, err := st.UpdateOrg(storetest.Context(t.Context()), e.org.ID, func(o *store.Org) error { o.SuperAdminGroup = "gatehouse-super-admins"; return nil }); err != nil {
		t.Fatal(err)
	}
	role := func(id string) string {
		t.Helper()
		return e.do("GET", "/Users/"+id, nil).must(t, 200).str("urn:gatehouse:params:scim:schemas:extension:2.0:Administrator.role")
	}
	body := user("r1@acme.test")
	body["roles"] = []any{map[string]any{"value": "Super Administrator"}}
	r1 := e.do("POST", "/Users", body).must(t, 201).str("id")
	r2 := e.do("POST", "/Users", user("r2@acme.test")).must(t, 201).str("id")
	if role(r1) != "Super Administrator" || role(r2) != "Administrator" {
		t.Fatalf("roles: %s, %s", role(r1), role(r2))
	}
	gid := e.do("POST", "/Groups", map[string]any{"displayName": "gatehouse-super-admins", "members": []any{map[string]any{"value": r2}}}).must(t, 201).str("id")
	if role(r2) != "Super Administrator" {
		t.Fatalf("member of the designated group: %s", role(r2))
	}
	e.do("PATCH", "/Groups/"+gid, patchBody(fmt.Sprintf(`{"op":"remove","path":"members[value eq \"%s\"]"}`, r2))).must(t, 204)
	if role(r2) != "Administrator" {
		t.Fatalf("after leaving the group: %s", role(r2))
	}
	// The owner, a Super Administrator created by hand, once provisioned by
	// the IdP holds the role the IdP gives: through the designated group
	// it stays one, with neither roles nor the group it is demoted.
	e.do("PATCH", "/Groups/"+gid, patchBody(fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q}]}`, e.owner.ID))).must(t, 204)
	e.do("PUT", "/Users/"+e.owner.ID, user(e.owner.UserName)).must(t, 200)
	if role(e.owner.ID) != "Super Administrator" {
		t.Fatalf("owner in the designated group: %s", role(e.owner.ID))
	}
	e.do("PATCH", "/Groups/"+gid, patchBody(`{"op":"remove","path":"members"}`)).must(t, 204)
	if role(e.owner.ID) != "Administrator" {
		t.Fatalf("owner provisioned without roles or group: %s", role(e.owner.ID))
	}
}
