package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

// byEmail returns the usernames of the administrators of org that have an
// address equal to value, case-insensitively.
func byEmail(t *testing.T, s store.Store, org string, where store.Predicate) []string {
	t.Helper()
	res, err := s.QueryAdministrators(ctx, org, store.Query{Where: store.Any{Attr: "emails", Where: where}, Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatalf("query emails: %v", err)
	}
	return usernames(res.Items)
}

func usernames(as []store.Administrator) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.UserName)
	}
	return out
}

func emailValue(v string, fold bool) store.Predicate {
	return store.Compare{Field: store.Field{Attr: []string{"value"}}, Op: store.OpEq, Value: v, Fold: fold}
}

func testEmails(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "emails")
	in := admin(o.ID, "jane")
	in.Email = "jane@work.example"
	in.Emails = []store.Email{
		{Value: "jane@work.example", Type: "work", Primary: true},
		{Value: "Jane.Doe@Home.Example", Type: "home", Display: "Jane at home"},
	}
	jane := mustCreate(t, s, in)
	got, err := s.Administrator(ctx, o.ID, jane.ID)
	if err != nil || !reflect.DeepEqual(got.Emails, in.Emails) {
		t.Fatalf("emails read back = %+v, %v; want %+v", got.Emails, err, in.Emails)
	}
	// Administrators created outside SCIM have only Email: found by it.
	mustCreate(t, s, admin(o.ID, "plain"))
	none := admin(o.ID, "none")
	none.Email = ""
	mustCreate(t, s, none)
	batch := admin(o.ID, "batched")
	batch.Emails = []store.Email{{Value: "b1@x.example", Type: "work"}, {Value: "b2@x.example"}}
	if err := CreateAdministrators(s, []store.Administrator{batch}); err != nil {
		t.Fatal(err)
	}

	workType := store.Compare{Field: store.Field{Attr: []string{"type"}}, Op: store.OpEq, Value: "work"}
	for _, tc := range []struct {
		name  string
		where store.Predicate
		want  []string
	}{
		{"value folded", emailValue("JANE.DOE@home.example", true), []string{"jane"}},
		{"value exact, other case", emailValue("jane.doe@home.example", false), []string{}},
		{"value exact", emailValue("Jane.Doe@Home.Example", false), []string{"jane"}},
		{"Entra: type work and value", store.And{workType, emailValue("JANE@WORK.EXAMPLE", true)}, []string{"jane"}},
		{"type work, home address", store.And{workType, emailValue("jane.doe@home.example", true)}, []string{}},
		{"derived from Email", emailValue("plain@example.com", true), []string{"plain"}},
		{"derived has no type", store.And{workType, emailValue("plain@example.com", true)}, []string{}},
		{"batch insert indexed", emailValue("B2@x.example", true), []string{"batched"}},
		{"primary", store.And{store.Compare{Field: store.Field{Attr: []string{"primary"}}, Op: store.OpEq, Value: true},
			store.Compare{Field: store.Field{Attr: []string{"value"}}, Op: store.OpCo, Value: "example"}}, []string{"owner", "jane", "plain"}},
		{"display", store.Compare{Field: store.Field{Attr: []string{"display"}}, Op: store.OpSw, Value: "Jane"}, []string{"jane"}},
		{"any address", nil, []string{"owner", "jane", "plain", "batched"}},
	} {
		if got := byEmail(t, s, o.ID, tc.where); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// Rewritten with the record; the old addresses are gone from the index.
	up, err := s.UpdateAdministrator(ctx, o.ID, jane.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
		a.Emails = []store.Email{{Value: "jane@new.example", Type: "work", Primary: true}}
		a.Email = "jane@new.example"
		return nil
	})
	if err != nil || up.Version != 2 || len(up.Emails) != 1 {
		t.Fatalf("update emails: %+v, %v", up, err)
	}
	if got := byEmail(t, s, o.ID, emailValue("jane.doe@home.example", true)); len(got) != 0 {
		t.Errorf("old address still indexed: %v", got)
	}
	if got := byEmail(t, s, o.ID, store.And{workType, emailValue("JANE@new.example", true)}); !slices.Equal(got, []string{"jane"}) {
		t.Errorf("new address: %v", got)
	}
	// An update that leaves the addresses keeps them indexed.
	if _, err := s.UpdateAdministrator(ctx, o.ID, jane.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.GivenName = "J"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := byEmail(t, s, o.ID, emailValue("jane@new.example", true)); !slices.Equal(got, []string{"jane"}) {
		t.Errorf("after an unrelated update: %v", got)
	}
	// Emails removed: Email is indexed again.
	if _, err := s.UpdateAdministrator(ctx, o.ID, jane.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
		a.Emails, a.Email = nil, "jane@only.example"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := byEmail(t, s, o.ID, emailValue("jane@new.example", true)); len(got) != 0 {
		t.Errorf("dropped address still indexed: %v", got)
	}
	if got := byEmail(t, s, o.ID, emailValue("jane@only.example", true)); !slices.Equal(got, []string{"jane"}) {
		t.Errorf("Email after Emails were removed: %v", got)
	}
	// Deleting the administrator deletes its index rows.
	if err := s.DeleteAdministrator(ctx, o.ID, jane.ID, store.FlagMissingSuper, nil); err != nil {
		t.Fatal(err)
	}
	if got := byEmail(t, s, o.ID, emailValue("jane@only.example", true)); len(got) != 0 {
		t.Errorf("deleted administrator found by email: %v", got)
	}

	bad := admin(o.ID, "bad")
	bad.Emails = []store.Email{{Type: "work"}}
	if _, err := s.CreateAdministrator(ctx, bad); err == nil {
		t.Error("an email without a value was accepted")
	}
	bad.Emails = nil
	bad.Attributes = store.RawJSON(`{"title":"a\u0000b"}`)
	if _, err := s.CreateAdministrator(ctx, bad); err == nil {
		t.Error(`attributes with \u0000 were accepted (PostgreSQL's jsonb cannot read them)`)
	}
	bad.Attributes = store.RawJSON(`{"title":"\ud800"}`)
	if _, err := s.CreateAdministrator(ctx, bad); err == nil {
		t.Error("attributes with an unpaired surrogate were accepted")
	}
	bad.Attributes = store.RawJSON(`{"title":"\\u0000 is text, \ud83d\ude00 a pair"}`)
	if _, err := s.CreateAdministrator(ctx, bad); err != nil {
		t.Errorf("valid attributes refused: %v", err)
	}
}

// roleOf reads an administrator's role and version.
func roleOf(t *testing.T, s store.Store, org, id string) (store.Role, int64) {
	t.Helper()
	a, err := s.Administrator(ctx, org, id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Role, a.Version
}

func testSCIMRoles(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "roles")
	scim := func(name string, role store.Role) store.Administrator {
		a := admin(o.ID, name)
		a.SCIMManaged, a.SCIMRole = true, role
		a.Role = store.RoleAdministrator
		if role == "" {
			a.Role = store.RoleSuperAdministrator // the caller's choice is overridden
		}
		return mustCreate(t, s, a)
	}
	granted := scim("granted", store.RoleSuperAdministrator)
	if granted.Role != store.RoleSuperAdministrator {
		t.Fatalf("SCIM role Super Administrator gave %q", granted.Role)
	}
	u1 := scim("u1", "")
	u2 := scim("u2", store.RoleAdministrator)
	if u1.Role != store.RoleAdministrator || u2.Role != store.RoleAdministrator {
		t.Fatalf("roles = %q, %q; want Administrator", u1.Role, u2.Role)
	}
	manual := admin(o.ID, "manual") // not SCIM-managed: its role is the caller's
	manual = mustCreate(t, s, manual)

	want := func(step string, a store.Administrator, role store.Role, version int64) {
		t.Helper()
		if r, v := roleOf(t, s, o.ID, a.ID); r != role || v != version {
			t.Errorf("%s: %s is %q version %d, want %q version %d", step, a.UserName, r, v, role, version)
		}
	}

	admins, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Admins"})
	others, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Others"})
	lower, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "admins"}) // not the designated name: exact match
	if _, err := s.PatchGroup(ctx, o.ID, admins.ID, store.GroupPatch{Add: []string{u1.ID, manual.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PatchGroup(ctx, o.ID, lower.ID, store.GroupPatch{Add: []string{u2.ID}}); err != nil {
		t.Fatal(err)
	}
	want("no designation yet", u1, store.RoleAdministrator, 1)

	if _, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error { o.SuperAdminGroup = "Admins"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Org(ctx, o.ID); got.SuperAdminGroup != "Admins" {
		t.Fatalf("SuperAdminGroup read back %q", got.SuperAdminGroup)
	}
	want("designated", u1, store.RoleSuperAdministrator, 2)
	want("designated, not SCIM-managed", manual, store.RoleAdministrator, 1)
	want("in a group named like it in another case", u2, store.RoleAdministrator, 1)
	want("granted by SCIM role", granted, store.RoleSuperAdministrator, 1)

	if _, err := s.PatchGroup(ctx, o.ID, admins.ID, store.GroupPatch{Add: []string{u2.ID, granted.ID}}); err != nil {
		t.Fatal(err)
	}
	want("added", u2, store.RoleSuperAdministrator, 2)
	want("added, already super by SCIM role", granted, store.RoleSuperAdministrator, 1)
	if _, err := s.PatchGroup(ctx, o.ID, admins.ID, store.GroupPatch{Remove: []string{u2.ID, granted.ID}}); err != nil {
		t.Fatal(err)
	}
	want("removed", u2, store.RoleAdministrator, 3)
	want("removed, still super by SCIM role", granted, store.RoleSuperAdministrator, 1)

	// A caller cannot set the role of a SCIM-managed administrator.
	up, err := s.UpdateAdministrator(ctx, o.ID, u1.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Role = store.RoleAdministrator; return nil })
	if err != nil || up.Role != store.RoleSuperAdministrator {
		t.Fatalf("update of a designated member's role: %q, %v", up.Role, err)
	}
	want("update of a member", u1, store.RoleSuperAdministrator, 3)
	// The SCIM role grants and takes away.
	up, err = s.UpdateAdministrator(ctx, o.ID, u2.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.SCIMRole = store.RoleSuperAdministrator; return nil })
	if err != nil || up.Role != store.RoleSuperAdministrator {
		t.Fatalf("SCIM role granted: %q, %v", up.Role, err)
	}
	up, err = s.UpdateAdministrator(ctx, o.ID, u2.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.SCIMRole = ""; return nil })
	if err != nil || up.Role != store.RoleAdministrator || up.Version != 5 {
		t.Fatalf("SCIM role taken away: %+v, %v", up, err)
	}
	// Not SCIM-managed any more: the role is the caller's again.
	up, err = s.UpdateAdministrator(ctx, o.ID, u1.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
		a.SCIMManaged, a.Role = false, store.RoleAdministrator
		return nil
	})
	if err != nil || up.Role != store.RoleAdministrator {
		t.Fatalf("released from SCIM: %q, %v", up.Role, err)
	}
	if _, err := s.UpdateAdministrator(ctx, o.ID, u1.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.SCIMManaged = true; return nil }); err != nil {
		t.Fatal(err)
	}
	want("managed again, in the designated group", u1, store.RoleSuperAdministrator, 5)

	// Renames away from and back to the designated name.
	if _, err := s.PatchGroup(ctx, o.ID, admins.ID, store.GroupPatch{Update: func(g *store.Group) error { g.DisplayName = "Former"; return nil }}); err != nil {
		t.Fatal(err)
	}
	want("renamed away", u1, store.RoleAdministrator, 6)
	if _, err := s.PatchGroup(ctx, o.ID, admins.ID, store.GroupPatch{Update: func(g *store.Group) error { g.DisplayName = "Admins"; return nil }}); err != nil {
		t.Fatal(err)
	}
	want("renamed back", u1, store.RoleSuperAdministrator, 7)
	// Renaming another group to the designated name promotes its members.
	if _, err := s.PatchGroup(ctx, o.ID, others.ID, store.GroupPatch{Add: []string{u2.ID}}); err != nil {
		t.Fatal(err)
	}
	want("member of a plain group", u2, store.RoleAdministrator, 5)

	// A new designation: members of the old group lose, of the new gain.
	if _, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error { o.SuperAdminGroup = "Others"; return nil }); err != nil {
		t.Fatal(err)
	}
	want("designation moved away", u1, store.RoleAdministrator, 8)
	want("designation moved here", u2, store.RoleSuperAdministrator, 6)
	want("designation moved, not SCIM-managed", manual, store.RoleAdministrator, 1)

	// Deleting the designated group.
	if err := s.DeleteGroup(ctx, o.ID, others.ID, nil); err != nil {
		t.Fatal(err)
	}
	want("designated group deleted", u2, store.RoleAdministrator, 7)

	// A group created with the designated name, members added by patch.
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Others"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: []string{u1.ID, u2.ID}}); err != nil {
		t.Fatal(err)
	}
	want("patched in", u1, store.RoleSuperAdministrator, 9)
	if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{RemoveAll: true, Add: []string{u2.ID}}); err != nil {
		t.Fatal(err)
	}
	want("replaced out", u1, store.RoleAdministrator, 10)
	want("replaced, stays", u2, store.RoleSuperAdministrator, 8)
	if _, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error { o.SuperAdminGroup = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	want("no designation", u2, store.RoleAdministrator, 9)
}

// testSCIMRolesTwoDesignated: several groups may carry the designated
// name (display names are not unique); membership of any one of them makes
// a SCIM-managed administrator a Super Administrator, and only a change of
// role bumps the version.
func testSCIMRolesTwoDesignated(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "twodesignated")
	if _, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error { o.SuperAdminGroup = "Supers"; return nil }); err != nil {
		t.Fatal(err)
	}
	scim := func(name string, role store.Role) store.Administrator {
		a := admin(o.ID, name)
		a.SCIMManaged, a.SCIMRole = true, role
		return mustCreate(t, s, a)
	}
	both, one, granted := scim("both", ""), scim("one", ""), scim("granted", store.RoleSuperAdministrator)
	want := func(step string, a store.Administrator, role store.Role, version int64) {
		t.Helper()
		if r, v := roleOf(t, s, o.ID, a.ID); r != role || v != version {
			t.Errorf("%s: %s is %q version %d, want %q version %d", step, a.UserName, r, v, role, version)
		}
	}
	g1, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Supers"}, both.ID, granted.ID)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Supers"})
	if err != nil {
		t.Fatal(err)
	}
	want("created with the group", both, store.RoleSuperAdministrator, 2)
	want("created with the group, super by SCIM role", granted, store.RoleSuperAdministrator, 1)
	// One add of a member of the other designated group and of a new one.
	if _, err := s.PatchGroup(ctx, o.ID, g2.ID, store.GroupPatch{Add: []string{both.ID, one.ID, granted.ID}}); err != nil {
		t.Fatal(err)
	}
	want("added to the second group", both, store.RoleSuperAdministrator, 2)
	want("added", one, store.RoleSuperAdministrator, 2)
	if _, err := s.PatchGroup(ctx, o.ID, g1.ID, store.GroupPatch{Remove: []string{both.ID, granted.ID}}); err != nil {
		t.Fatal(err)
	}
	want("removed from one, still in the other", both, store.RoleSuperAdministrator, 2)
	if _, err := s.PatchGroup(ctx, o.ID, g2.ID, store.GroupPatch{Remove: []string{both.ID, one.ID, granted.ID}}); err != nil {
		t.Fatal(err)
	}
	want("removed from both", both, store.RoleAdministrator, 3)
	want("removed", one, store.RoleAdministrator, 3)
	want("removed from both, super by SCIM role", granted, store.RoleSuperAdministrator, 1)
}

// testCreatePaths: every way an administrator is created writes the same
// things (one batch insert): the row, its email index rows (a filter on an
// address finds it), its audit entry and its count (a list's total), and a
// Super Administrator among them ends the organization's flag.
func testCreatePaths(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "createpaths")
	created := []store.Administrator{owner}
	one := func(a store.Administrator) store.Administrator {
		a.Emails = []store.Email{{Value: a.UserName + "@paths.example", Type: "work"}}
		return a
	}
	created = append(created, mustCreate(t, s, one(admin(o.ID, "queued")))) // the group commit
	super := one(admin(o.ID, "super"))
	super.Role = store.RoleSuperAdministrator
	created = append(created, mustCreate(t, s, super)) // alone
	inv, err := s.InviteAdministrator(ctx, one(admin(o.ID, "invited")), store.Invitation{Hash: []byte("paths-invite"),
		ExpiresAt: time.Now().Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	created = append(created, inv)
	batch := []store.Administrator{one(admin(o.ID, "batch-1")), one(admin(o.ID, "batch-2"))}
	if err := CreateAdministrators(s, batch); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"batch-1", "batch-2"} {
		a, err := s.AdministratorByUsername(ctx, o.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, a)
	}
	res, err := s.QueryAdministrators(ctx, o.ID, store.Query{Page: store.Page{Limit: 100}})
	if err != nil || res.Total != len(created) || len(res.Items) != len(created) {
		t.Fatalf("total %d, %d listed, %v; want %d", res.Total, len(res.Items), err, len(created))
	}
	for _, a := range created[1:] {
		if got := byEmail(t, s, o.ID, emailValue(a.UserName+"@paths.example", false)); len(got) != 1 || got[0] != a.UserName {
			t.Errorf("%s by its address: %v", a.UserName, got)
		}
	}
	for _, a := range created {
		es, err := s.AuditLog(ctx, o.ID, store.AuditQuery{TargetID: a.ID, Action: store.AuditAdministratorCreate})
		if err != nil || len(es) != 1 {
			t.Errorf("%s: %d creation entries, %v; want 1", a.UserName, len(es), err)
		}
	}

	// A Super Administrator created by any path ends the flag.
	for _, path := range []string{"alone", "batch"} {
		flagged, flaggedOwner := newOrg(t, s, "createpaths-"+path)
		if err := s.DeleteAdministrator(ctx, flagged.ID, flaggedOwner.ID, store.FlagMissingSuper, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Org(ctx, flagged.ID); got.SuperAdminMissingSince == nil {
			t.Fatalf("%s: the organization without a Super Administrator is not flagged", path)
		}
		a := admin(flagged.ID, "new-super")
		a.Role = store.RoleSuperAdministrator
		if path == "alone" {
			mustCreate(t, s, a)
		} else if err := CreateAdministrators(s, []store.Administrator{a}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Org(ctx, flagged.ID); got.SuperAdminMissingSince != nil {
			t.Errorf("%s: a new Super Administrator left the flag", path)
		}
	}
}

func testPatchGroup(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "patch")
	_, stranger := newOrg(t, s, "patch-other")
	m := make([]string, 4)
	for i := range m {
		m[i] = mustCreate(t, s, admin(o.ID, fmt.Sprintf("m%d", i))).ID
	}
	g, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Team"})
	if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: m[:2]}); err != nil {
		t.Fatal(err)
	}
	g, _ = s.Group(ctx, o.ID, g.ID)
	members := func() []string {
		t.Helper()
		ms, _, err := s.GroupMembers(ctx, o.ID, g.ID, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, x := range ms {
			out = append(out, x.AdministratorID)
		}
		slices.Sort(out)
		return out
	}
	rename := func(name string) func(*store.Group) error {
		return func(x *store.Group) error { x.DisplayName = name; return nil }
	}

	// One bad id in Add: nothing of the patch is applied.
	for _, bad := range []string{"no-such-admin", stranger.ID} {
		_, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: rename("Renamed"), Remove: m[:1], Add: []string{m[2], bad}})
		wantErr(t, err, store.ErrNotFound)
		got, _ := s.Group(ctx, o.ID, g.ID)
		if got.DisplayName != "Team" || got.Version != g.Version || !slices.Equal(members(), sorted(m[:2])) {
			t.Fatalf("refused patch left %+v with members %v", got, members())
		}
	}
	// An If-Match check inside Update sees the version before the patch.
	stale := func(x *store.Group) error {
		if x.Version != g.Version-1 {
			return store.ErrConflict
		}
		return nil
	}
	_, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: stale, Add: m[2:3]})
	wantErr(t, err, store.ErrConflict)
	if !slices.Equal(members(), sorted(m[:2])) {
		t.Fatalf("a refused Update let the members change: %v", members())
	}

	ifMatch := func(x *store.Group) error {
		if x.Version != g.Version {
			return store.ErrConflict
		}
		x.DisplayName, x.ExternalID = "Renamed", "ext-9"
		x.ID, x.Version = "forged", 99 // not the caller's to change
		return nil
	}
	got, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: ifMatch, Remove: m[:1], Add: m[2:4]})
	if err != nil || got.Version != g.Version+1 || got.DisplayName != "Renamed" || got.ID != g.ID || got.ExternalID != "ext-9" {
		t.Fatalf("PatchGroup = %+v, %v; want version %d", got, err, g.Version+1)
	}
	if read, _ := s.Group(ctx, o.ID, g.ID); read.Version != got.Version || read.DisplayName != "Renamed" || !read.UpdatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("read back %+v, returned %+v", read, got)
	}
	if want := []string{m[1], m[2], m[3]}; !slices.Equal(members(), sorted(want)) {
		t.Fatalf("members = %v, want %v", members(), want)
	}
	g = got

	// Nothing changed: no new version.
	got, err = s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: rename("Renamed"), Remove: []string{"absent"}, Add: m[1:2]})
	if err != nil || got.Version != g.Version {
		t.Fatalf("no-op patch: version %d, %v; want %d", got.Version, err, g.Version)
	}
	// RemoveAll, then Add: the members are replaced, one version.
	got, err = s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{RemoveAll: true, Remove: m[3:4], Add: m[:1]})
	if err != nil || got.Version != g.Version+1 || !slices.Equal(members(), sorted(m[:1])) {
		t.Fatalf("replace members: %+v, %v, members %v", got, err, members())
	}
	if _, total, _ := s.GroupMembers(ctx, o.ID, g.ID, store.Page{}); total != 1 {
		t.Fatalf("member total after replace = %d", total)
	}
	// A group of another organization, or none.
	_, err = s.PatchGroup(ctx, stranger.OrgID, g.ID, store.GroupPatch{RemoveAll: true})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.PatchGroup(ctx, o.ID, "no-such-group", store.GroupPatch{})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Update: rename("")})
	if err == nil {
		t.Fatal("a patch to an empty display name succeeded")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// testAdministratorGroups: the groups of one administrator
// (AdministratorWithGroups) and of a page of them (Query.WithGroups).
func testAdministratorGroups(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "groups-of")
	other, stranger := newOrg(t, s, "groups-of-other")
	a := mustCreate(t, s, admin(o.ID, "a"))
	b := mustCreate(t, s, admin(o.ID, "b"))
	c := mustCreate(t, s, admin(o.ID, "c"))
	g1, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "First"})
	g2, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Second"})
	og, _ := s.CreateGroup(ctx, store.Group{OrgID: other.ID, DisplayName: "Foreign"})
	s.PatchGroup(ctx, o.ID, g2.ID, store.GroupPatch{Add: []string{a.ID, b.ID}})
	s.PatchGroup(ctx, o.ID, g1.ID, store.GroupPatch{Add: []string{a.ID}})
	s.PatchGroup(ctx, other.ID, og.ID, store.GroupPatch{Add: []string{stranger.ID}})
	want := map[string][]store.GroupRef{
		a.ID: {{ID: g1.ID, DisplayName: "First"}, {ID: g2.ID, DisplayName: "Second"}},
		b.ID: {{ID: g2.ID, DisplayName: "Second"}},
	}
	for _, x := range []store.Administrator{a, b, c} {
		got, refs, err := s.AdministratorWithGroups(ctx, o.ID, x.ID)
		if err != nil || got.ID != x.ID || got.UserName != x.UserName || !reflect.DeepEqual(refs, want[x.ID]) {
			t.Fatalf("AdministratorWithGroups(%s) = %s, %v, %v; want groups %v", x.UserName, got.UserName, refs, err, want[x.ID])
		}
	}
	q := store.Query{Where: store.Or{}, WithGroups: true, Page: store.Page{Limit: 10}}
	for _, x := range []store.Administrator{a, b, c, stranger} {
		q.Where = append(q.Where.(store.Or), store.Compare{Field: store.AdministratorID, Op: store.OpEq, Value: x.ID})
	}
	if r, err := s.QueryAdministrators(ctx, o.ID, q); err != nil || len(r.Items) != 3 || !reflect.DeepEqual(r.Groups, want) {
		t.Fatalf("QueryAdministrators WithGroups: %d items, groups %v, %v; want %v", len(r.Items), r.Groups, err, want)
	}
	if r, err := s.QueryAdministrators(ctx, o.ID, store.Query{WithGroups: true}); err != nil || r.Groups != nil || r.Total != 4 {
		t.Fatalf("QueryAdministrators WithGroups, no rows asked: groups %v, total %d, %v", r.Groups, r.Total, err)
	}
	if _, _, err := s.AdministratorWithGroups(ctx, o.ID, stranger.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another organization's administrator: %v", err)
	}
}

// testGroupCommit: concurrent creates, some clashing with stored usernames,
// some with each other (the same name in another case) and some for an
// organization that does not exist, each fail or succeed alone, are
// counted, and are audited with their own caller's actor.
func testGroupCommit(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "group-commit")
	const stored, contested, fresh, orphans = 8, 8, 40, 4
	// A group is three spellings of one name, differing only by case: all
	// clash with the name stored before, or one of them wins.
	type group struct {
		stored string
		names  []string
	}
	spellings := func(name string) []string {
		return []string{name, strings.ToUpper(name), strings.ToUpper(name[:1]) + name[1:]}
	}
	var groups []group
	for i := range stored {
		name := fmt.Sprintf("stored-%d", i)
		mustCreate(t, s, admin(o.ID, name))
		groups = append(groups, group{stored: name, names: spellings(name)})
	}
	for i := range contested {
		groups = append(groups, group{names: spellings(fmt.Sprintf("contested-%d", i))})
	}
	// The creates of the organization that does not exist come in a second
	// wave, with some of the others: a batch they are part of takes
	// another path on PostgreSQL (see commitPostgres).
	type create struct {
		org, name string
		group     int // the index in groups, or -1
		wave      int
	}
	var creates []create
	for g, gr := range groups {
		for _, name := range gr.names {
			creates = append(creates, create{o.ID, name, g, 0})
		}
	}
	for i := range fresh {
		creates = append(creates, create{o.ID, fmt.Sprintf("fresh-%d", i), -1, i % 2})
	}
	for i := range orphans {
		creates = append(creates, create{"no-such-org", fmt.Sprintf("orphan-%d", i), -1, 1})
	}
	actor := func(i int) store.Actor {
		return store.Actor{Kind: store.ActorSCIM, ID: fmt.Sprintf("token-%d", i), Name: fmt.Sprintf("gh_scim_%d", i)}
	}
	errs := make([]error, len(creates))
	created := make([]store.Administrator, len(creates))
	for wave := range 2 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range creates {
			if c.wave == wave {
				wg.Go(func() {
					<-start
					created[i], errs[i] = s.CreateAdministrator(store.WithActor(ctx, actor(i)), admin(c.org, c.name))
				})
			}
		}
		close(start)
		wg.Wait()
	}

	winners := map[string]int{} // the id of each created administrator: the index of its create
	winnerOf := make([]string, len(groups))
	for i, c := range creates {
		if errs[i] == nil {
			winners[created[i].ID] = i
			if c.group >= 0 {
				if winnerOf[c.group] != "" {
					t.Errorf("both %q and %q were created", winnerOf[c.group], c.name)
				}
				winnerOf[c.group] = c.name
			}
		}
	}
	for i, c := range creates {
		var exists *store.ExistsError
		switch {
		case c.org != o.ID:
			if !errors.Is(errs[i], store.ErrNotFound) {
				t.Errorf("%s in a missing organization: %v, want ErrNotFound", c.name, errs[i])
			}
		case c.group < 0:
			if errs[i] != nil {
				t.Errorf("%s: %v", c.name, errs[i])
			}
		case groups[c.group].stored != "":
			if !errors.As(errs[i], &exists) || exists.Existing != groups[c.group].stored {
				t.Errorf("%s: %v, want ExistsError naming %s", c.name, errs[i], groups[c.group].stored)
			}
		case errs[i] != nil && (!errors.As(errs[i], &exists) || exists.Existing != winnerOf[c.group]):
			t.Errorf("%s: %v, want ExistsError naming %s", c.name, errs[i], winnerOf[c.group])
		}
	}
	for g, gr := range groups {
		if gr.stored == "" && winnerOf[g] == "" {
			t.Errorf("none of %v was created", gr.names)
		}
	}
	if want := fresh + contested; len(winners) != want {
		t.Errorf("%d created, want %d", len(winners), want)
	}
	for id, i := range winners {
		got, err := s.Administrator(ctx, o.ID, id)
		if err != nil || got.UserName != creates[i].name || got.Version != 1 {
			t.Errorf("%s read back: %+v, %v", creates[i].name, got, err)
		}
	}
	page, total, err := listAdministrators(s, o.ID, store.Page{Limit: 1000})
	if want := 1 + stored + len(winners); err != nil || total != want || len(page) != want {
		t.Errorf("total = %d, rows = %d (%v), want %d", total, len(page), err, want)
	}
	log, err := s.AuditLog(ctx, o.ID, store.AuditQuery{Action: store.AuditAdministratorCreate, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	for _, e := range log {
		if e.ActorKind != store.ActorSCIM {
			continue // the owner and the stored names
		}
		i, ok := winners[e.TargetID]
		switch {
		case !ok:
			t.Errorf("audit entry of %s (%s), which was not created", e.TargetName, e.TargetID)
		case audited[e.TargetID]:
			t.Errorf("two audit entries of %s", e.TargetName)
		case e.ActorID != actor(i).ID || e.ActorName != actor(i).Name || e.TargetName != creates[i].name:
			t.Errorf("audit entry of %s: actor %s/%s, want %s", creates[i].name, e.ActorID, e.ActorName, actor(i).ID)
		}
		audited[e.TargetID] = true
	}
	if len(audited) != len(winners) {
		t.Errorf("%d audit entries for %d creates", len(audited), len(winners))
	}

	// A caller whose context has ended gets its error and writes nothing.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.CreateAdministrator(cancelled, admin(o.ID, "cancelled"))
	wantErr(t, err, context.Canceled)
	if _, err := s.AdministratorByUsername(ctx, o.ID, "cancelled"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a cancelled create was written: %v", err)
	}
}

// testRolesUnderConcurrency: a designation that changes while members are
// being added (each once, so a missed recomputation is never repaired by a
// later one) and the designated group is renamed, leaves every
// SCIM-managed administrator with the role the rule gives for the final
// state.
func testRolesUnderConcurrency(t *testing.T, s store.Store) {
	o, _ := newOrg(t, s, "roles-race")
	const workers, each = 8, 25
	batch := make([]store.Administrator, workers*each)
	for i := range batch {
		batch[i] = admin(o.ID, fmt.Sprintf("r%d", i))
		batch[i].ID = fmt.Sprintf("roles-race-%d", i)
		batch[i].SCIMManaged = true
		if i%10 == 0 {
			batch[i].SCIMRole = store.RoleSuperAdministrator
		}
	}
	if err := CreateAdministrators(s, batch); err != nil {
		t.Fatal(err)
	}
	ga, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "A"})
	gb, _ := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "B"})
	var wg sync.WaitGroup
	var added sync.WaitGroup // half of the adds are done
	added.Add(workers)
	errs := make(chan error, workers*each+10)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if i == each/2 {
					added.Done()
				}
				id := batch[w*each+i].ID
				g := []string{ga.ID, gb.ID}[i%2]
				if _, err := s.PatchGroup(ctx, o.ID, g, store.GroupPatch{Add: []string{id}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		added.Wait()
		if _, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error { o.SuperAdminGroup = "B"; return nil }); err != nil {
			errs <- err
		}
		if _, err := s.PatchGroup(ctx, o.ID, ga.ID, store.GroupPatch{Update: func(g *store.Group) error { g.DisplayName = "B"; return nil }}); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent change: %v", err)
	}
	ids := make([]string, len(batch))
	for i, a := range batch {
		ids[i] = a.ID
	}
	all, err := s.QueryAdministrators(ctx, o.ID, store.Query{WithGroups: true, Page: store.Page{Limit: len(ids) + 10}})
	if err != nil {
		t.Fatal(err)
	}
	member := all.Groups

	for i, id := range ids {
		want := store.RoleAdministrator
		if i%10 == 0 || len(member[id]) > 0 { // both groups are named B now
			want = store.RoleSuperAdministrator
		}
		if got, _ := roleOf(t, s, o.ID, id); got != want {

			t.Errorf("r%d is %q, want %q (groups %v)", i, got, want, member[id])
		}
	}
	if n := len(member); n != len(ids) {
		t.Errorf("%d of %d administrators are members", n, len(ids))
	}
}
