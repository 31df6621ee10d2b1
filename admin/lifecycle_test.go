package admin_test

import (
	"context"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestSuperAdministratorDemotion: a Super Administrator is demoted by
// themselves (never the last), by support, and by no one else.
func TestSuperAdministratorDemotion(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		org, owner, _, err := (&admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}).Create(ctx, validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		l := &admin.Lifecycle{Store: s}
		op := admin.Principal{OrgID: org.ID, Operator: true, Actor: storetest.Actor}
		promote, demote := store.RoleSuperAdministrator, store.RoleAdministrator
		second, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: org.ID, UserName: "second", Email: "second@acme.test",
			Role: store.RoleAdministrator, Status: store.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Edit(ctx, op, second.ID, admin.Edit{Role: &promote}); err != nil {
			t.Fatal(err)
		}
		self := admin.Principal{OrgID: org.ID, Role: store.RoleSuperAdministrator, AdministratorID: owner.ID,
			Actor: store.Actor{Kind: store.ActorAdministrator, ID: owner.ID, Name: owner.UserName}}
		// An API key: nobody's own account.
		key := admin.Principal{OrgID: org.ID, Role: store.RoleSuperAdministrator, Actor: store.Actor{Kind: store.ActorAPIKey, ID: "key", Name: "key"}}
		_, err = l.Edit(ctx, key, owner.ID, admin.Edit{Role: &demote})
		assertCode(t, err, admin.CodeSuperAdminProtected)
		_, err = l.Edit(ctx, self, second.ID, admin.Edit{Role: &demote})
		assertCode(t, err, admin.CodeSuperAdminProtected)
		if a, err := l.Edit(ctx, self, owner.ID, admin.Edit{Role: &demote}); err != nil || a.Role != store.RoleAdministrator {
			t.Fatalf("self-demotion: %+v %v", a, err)
		}
		// second is the last now: not even support demotes them.
		_, err = l.Edit(ctx, op, second.ID, admin.Edit{Role: &demote})
		assertCode(t, err, admin.CodeLastSuperAdmin)
	})
}
