package storetest

import (
	"errors"
	"sync"
	"testing"

	"gatehouse/store"
)

// testSuperRule: the organization keeps a Super Administrator, Pending or
// Active, under KeepSuper; under FlagMissingSuper the write goes through
// and the organization is flagged until it has one again, by any path
// (an update, a designated group, a new Super Administrator).
func testSuperRule(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "super-rule") // owner: a Pending Super Administrator
	flagged := func(step string, want bool) {
		t.Helper()
		got, err := s.Org(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if (got.SuperAdminMissingSince != nil) != want {
			t.Fatalf("%s: flagged %v, want %v", step, got.SuperAdminMissingSince, want)
		}
	}
	demote := func(a *store.Administrator) error { a.Role = store.RoleAdministrator; return nil }

	// Pending counts: the sole Pending Super Administrator stays.
	_, err := s.UpdateAdministrator(ctx, o.ID, owner.ID, store.KeepSuper, demote)
	wantErr(t, err, store.ErrLastSuperAdministrator)
	wantErr(t, s.DeleteAdministrator(ctx, o.ID, owner.ID, store.KeepSuper, nil), store.ErrLastSuperAdministrator)
	flagged("refused", false)

	// The IdP's: through, flagged.
	if _, err := s.UpdateAdministrator(ctx, o.ID, owner.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
		a.Status = store.StatusDeactivated
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	flagged("deactivated by the IdP", true)
	// A new Super Administrator ends it; so does the designated group.
	boss := admin(o.ID, "boss")
	boss.Role = store.RoleSuperAdministrator
	boss = mustCreate(t, s, boss)
	flagged("new Super Administrator", false)
	wantErr(t, s.DeleteAdministrator(ctx, o.ID, boss.ID, store.KeepSuper, nil), store.ErrLastSuperAdministrator)
	if err := s.DeleteAdministrator(ctx, o.ID, boss.ID, store.FlagMissingSuper, nil); err != nil {
		t.Fatal(err)
	}
	flagged("deleted by the IdP", true)
	member := admin(o.ID, "member")
	member.SCIMManaged = true
	member = mustCreate(t, s, member)
	g, err := s.CreateGroup(ctx, store.Group{OrgID: o.ID, DisplayName: "Supers"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateOrg(ctx, o.ID, func(o *store.Org) error { o.SuperAdminGroup = "Supers"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Add: []string{member.ID}}); err != nil {
		t.Fatal(err)
	}
	flagged("member of the designated group", false)
	if _, err := s.PatchGroup(ctx, o.ID, g.ID, store.GroupPatch{Remove: []string{member.ID}}); err != nil {
		t.Fatal(err)
	}
	flagged("removed from the designated group", true)

	// A delete's check runs on the locked row, and its error is returned.
	stale := errors.New("stale")
	wantErr(t, s.DeleteAdministrator(ctx, o.ID, member.ID, store.KeepSuper, func(a store.Administrator) error {
		if a.ID != member.ID {
			return nil
		}
		return stale
	}), stale)
	if _, err := s.Administrator(ctx, o.ID, member.ID); err != nil {
		t.Fatalf("refused delete removed the administrator: %v", err)
	}
}

// testSuperRuleConcurrent: demotions of the last two Super
// Administrators at once leave one.
func testSuperRuleConcurrent(t *testing.T, s store.Store) {
	o, owner := newOrg(t, s, "super-race")
	for round := range 5 {
		second := admin(o.ID, "second")
		second.UserName += string(rune('a' + round))
		second.Role, second.Status = store.RoleSuperAdministrator, store.StatusPending
		second = mustCreate(t, s, second)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []string{owner.ID, second.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.UpdateAdministrator(ctx, o.ID, id, store.KeepSuper, func(a *store.Administrator) error {
					a.Role = store.RoleAdministrator
					return nil
				})
			}()
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			if errors.Is(err, store.ErrLastSuperAdministrator) {
				refused++
			} else if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if refused != 1 {
			t.Fatalf("round %d: %d of 2 demotions refused", round, refused)
		}
		// Back to the owner as the one Super Administrator.
		if errs[0] != nil {
			if _, err := s.UpdateAdministrator(ctx, o.ID, second.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
				a.Status = store.StatusDeactivated
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		} else {
			if _, err := s.UpdateAdministrator(ctx, o.ID, owner.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
				a.Role = store.RoleSuperAdministrator
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UpdateAdministrator(ctx, o.ID, second.ID, store.FlagMissingSuper, func(a *store.Administrator) error {
				a.Status = store.StatusDeactivated
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
