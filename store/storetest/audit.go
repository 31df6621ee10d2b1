package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"gatehouse/store"
)

// testAudit checks that writes record who changed what, in the
// transaction of the change, and that the log is read back filtered.
func testAudit(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "audited")
	alice := store.Actor{Kind: store.ActorAdministrator, ID: owner.ID, Name: owner.UserName}
	actx := store.WithActor(ctx, alice)
	a, err := s.CreateAdministrator(actx, admin(o.ID, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateAdministrator(store.WithActor(ctx, store.Actor{Kind: store.ActorSCIM, ID: "tok", Name: "gh_scim_x"}), o.ID, a.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
		a.GivenName, a.Status = "Robert", store.StatusDeactivated
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// An update that changes nothing is not an entry.
	if _, err := s.UpdateAdministrator(actx, o.ID, a.ID, store.FlagMissingSuper, func(*store.Administrator) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// A failed write leaves no entry either.
	if _, err := s.UpdateAdministrator(actx, o.ID, a.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Phone = "x"; return store.ErrConflict }); err == nil {
		t.Fatal("refused update succeeded")
	}
	g, err := s.CreateGroup(actx, store.Group{OrgID: o.ID, DisplayName: "Ops"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PatchGroup(actx, o.ID, g.ID, store.GroupPatch{Add: []string{a.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, nil); err != nil { // no actor: the system
		t.Fatal(err)
	}
	if err := s.RecordAudit(actx, store.AuditEntry{OrgID: o.ID, Action: "signin.failure", TargetKind: "administrator",
		TargetID: owner.ID, After: store.RawJSON(`{"reason":"bad password"}`)}); err != nil {
		t.Fatal(err)
	}

	all, err := s.AuditLog(ctx, o.ID, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ action, actor, before, after string }
	var got []seen
	for _, e := range all {
		got = append(got, seen{e.Action, e.ActorKind + ":" + e.ActorName, string(e.Before), string(e.After)})
	}
	want := []seen{
		{"signin.failure", "administrator:" + owner.UserName, "", `{"reason":"bad password"}`},
		{store.AuditAdministratorDelete, "system:", "", ""}, // views checked below
		{store.AuditGroupMembers, "administrator:" + owner.UserName, "", `{"added":1,"addedIds":["` + a.ID + `"],"removed":0}`},
		{store.AuditGroupCreate, "administrator:" + owner.UserName, "", `{"displayName":"Ops","externalId":""}`},
		{store.AuditAdministratorUpdate, "scim:gh_scim_x", `{"givenName":"Given","status":"Active"}`, `{"givenName":"Robert","status":"Deactivated"}`},
		{store.AuditAdministratorCreate, "administrator:" + owner.UserName, "", ""},
	}
	if len(got) < len(want) {
		t.Fatalf("audit log %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.action != w.action || g.actor != w.actor || (w.before != "" && g.before != w.before) || (w.after != "" && g.after != w.after) {
			t.Fatalf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	var deleted map[string]any
	if err := json.Unmarshal(all[1].Before, &deleted); err != nil || deleted["userName"] != "bob" || all[1].After != nil {
		t.Fatalf("delete entry: before %s after %s", all[1].Before, all[1].After)
	}
	for _, e := range all {
		if e.OrgID != o.ID || e.At.IsZero() || e.Seq == 0 {
			t.Fatalf("entry %+v", e)
		}
	}

	// Filters and paging.
	check := func(q store.AuditQuery, wantActions ...string) {
		t.Helper()
		es, err := s.AuditLog(ctx, o.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range es {
			actions = append(actions, e.Action)
		}
		if len(actions) != len(wantActions) {
			t.Fatalf("%+v: %v, want %v", q, actions, wantActions)
		}
		for i := range actions {
			if actions[i] != wantActions[i] {
				t.Fatalf("%+v: %v, want %v", q, actions, wantActions)
			}
		}
	}
	check(store.AuditQuery{TargetID: a.ID}, store.AuditAdministratorDelete, store.AuditAdministratorUpdate, store.AuditAdministratorCreate)
	check(store.AuditQuery{ActorID: "tok"}, store.AuditAdministratorUpdate)
	check(store.AuditQuery{Action: "group."}, store.AuditGroupMembers, store.AuditGroupCreate)
	check(store.AuditQuery{Action: "group.create"}, store.AuditGroupCreate)
	check(store.AuditQuery{Action: "group"}) // not a prefix without the dot
	check(store.AuditQuery{TargetID: a.ID, Limit: 1, Before: all[1].Seq}, store.AuditAdministratorUpdate)
	check(store.AuditQuery{Since: time.Now().Add(time.Hour)})
	check(store.AuditQuery{Until: time.Now().Add(-time.Hour)})
	other, _ := newOrg(t, s, "audited-other")
	check(store.AuditQuery{TargetID: a.ID, Action: "administrator."}, store.AuditAdministratorDelete, store.AuditAdministratorUpdate, store.AuditAdministratorCreate)
	if es, _ := s.AuditLog(ctx, other.ID, store.AuditQuery{TargetID: a.ID}); len(es) != 0 {
		t.Fatalf("another organization sees %d entries", len(es))
	}
	if _, err := s.AuditLog(ctx, o.ID, store.AuditQuery{Limit: 1001}); err == nil {
		t.Fatal("a page of 1001 entries was not refused")
	}
}
