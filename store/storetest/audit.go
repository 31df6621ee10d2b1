package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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
	if err := s.DeleteAdministrator(store.WithActor(ctx, store.System), o.ID, a.ID, store.FlagMissingSuper, nil); err != nil {
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

// testNoActor checks that an audited write whose context names no actor
// is refused with ErrNoActor and writes nothing: no row, no audit entry.
// Nothing is logged as gatehouse itself because a caller forgot to say who
// acts.
func testNoActor(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "no-actor")
	bob := mustCreate(t, s, admin(o.ID, "bob"))
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Ops"})
	if err != nil {
		t.Fatal(err)
	}
	log, err := s.AuditLog(ctx, o.ID, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	sql, _ := s.(*store.SQL)
	if sql != nil {
		snap = TakeSnapshot(t, sql)
	}

	bare := context.Background()
	writes := []struct {
		name  string
		write func() error
	}{
		{"CreateOrg", func() error {
			_, _, err := s.CreateOrg(bare, store.NewOrg{Org: store.Org{Slug: "no-actor-2", Name: "x"},
				Owner: store.Administrator{UserName: "owner", Email: "o@x.example", Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
			return err
		}},
		{"UpdateOrg", func() error {
			_, err := s.UpdateOrg(bare, o.ID, func(o *store.Org) error { o.Name = "renamed"; return nil })
			return err
		}},
		{"AddRegisteredDomain", func() error { return s.AddRegisteredDomain(bare, o.ID, "other.example") }},
		{"CreateAdministrator", func() error { _, err := s.CreateAdministrator(bare, admin(o.ID, "carol")); return err }},
		{"CreateAdministrators", func() error {
			b, ok := s.(BatchCreator)
			if !ok {
				return fmt.Errorf("%T has no bulk insert", s)
			}
			return b.CreateAdministrators(bare, []store.Administrator{admin(o.ID, "dave"), admin(o.ID, "erin")})
		}},
		{"UpdateAdministrator", func() error {
			_, err := s.UpdateAdministrator(bare, o.ID, bob.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
				a.Role = store.RoleSuperAdministrator
				return nil
			})
			return err
		}},
		{"UpdateAdministratorNoChange", func() error {
			_, err := s.UpdateAdministrator(bare, o.ID, bob.ID, store.FlagMissingSuper, func(*store.Administrator) error { return nil })
			return err
		}},
		{"DeleteAdministrator", func() error { return s.DeleteAdministrator(bare, o.ID, bob.ID, store.FlagMissingSuper, nil) }},
		{"CreateGroup", func() error {
			_, err := s.CreateGroup(bare, store.Group{OrgID: o.ID, DisplayName: "Dev"}, bob.ID)
			return err
		}},
		{"PatchGroup", func() error {
			_, err := s.PatchGroup(bare, o.ID, g.ID, store.GroupPatch{Add: []string{bob.ID, owner.ID}})
			return err
		}},
		{"DeleteGroup", func() error { return s.DeleteGroup(bare, o.ID, g.ID, nil) }},
		{"CreateSCIMToken", func() error {
			_, err := s.CreateSCIMToken(bare, store.SCIMToken{OrgID: o.ID, Prefix: "gh_scim_none", Hash: []byte("no-actor")})
			return err
		}},
		{"CreateAPIKey", func() error {
			_, err := s.CreateAPIKey(bare, store.APIKey{OrgID: o.ID, Name: "k", Prefix: "gh_key_none", Hash: []byte("no-actor"), Role: store.RoleAdministrator})
			return err
		}},
		{"RecordAudit", func() error {
			return s.RecordAudit(bare, store.AuditEntry{OrgID: o.ID, Action: store.AuditSignInFailure, TargetKind: "administrator", TargetID: bob.ID})
		}},
		// An empty actor is no actor.
		{"EmptyActor", func() error {
			_, err := s.CreateAdministrator(store.WithActor(bare, store.Actor{}), admin(o.ID, "frank"))
			return err
		}},
	}
	for _, w := range writes {
		if err := w.write(); !errors.Is(err, store.ErrNoActor) {
			t.Errorf("%s without an actor: %v, want ErrNoActor", w.name, err)
		}
	}
	if sql != nil {
		AssertUnchanged(t, sql, snap)
	}
	// Creates without an actor arriving together with creates that have
	// one: the group commit refuses the first and keeps the others.
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := bare
			if i%2 == 1 {
				c = ctx
			}
			_, errs[i] = s.CreateAdministrator(c, admin(o.ID, fmt.Sprintf("concurrent-%d", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && !errors.Is(err, store.ErrNoActor) || i%2 == 1 && err != nil {
			t.Errorf("concurrent create %d: %v", i, err)
		}
		if _, err := s.AdministratorByUsername(ctx, o.ID, fmt.Sprintf("concurrent-%d", i)); (i%2 == 0) != errors.Is(err, store.ErrNotFound) {
			t.Errorf("concurrent create %d: lookup %v", i, err)
		}
	}
	for i := 1; i < n; i += 2 {
		a, err := s.AdministratorByUsername(ctx, o.ID, fmt.Sprintf("concurrent-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAdministrator(ctx, o.ID, a.ID, store.FlagMissingSuper, nil); err != nil {
			t.Fatal(err)
		}
	}

	after, err := s.AuditLog(ctx, o.ID, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(after), len(log)+n; got != want { // a create and a delete for each odd one
		t.Errorf("audit log has %d entries, want %d", got, want)
	}
	for _, e := range after {
		if e.ActorKind != Actor.Kind || e.ActorName != Actor.Name {
			t.Errorf("entry %s by %s:%s, want only the test's actor", e.Action, e.ActorKind, e.ActorName)
		}
	}
	if _, err := s.OrgBySlug(ctx, "no-actor-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("organization created without an actor: %v", err)
	}
	if got, err := s.Administrator(ctx, o.ID, bob.ID); err != nil || got.Role != store.RoleAdministrator {
		t.Errorf("bob after refused writes: %+v, %v", got, err)
	}
}
