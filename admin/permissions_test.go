package admin_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestAllowedMatchesTheServices: what admin.AllowedOn tells a page to
// offer is exactly what the services then do, for a Super Administrator
// and an Administrator, on each kind of administrator, with SCIM off and
// on: an allowed action goes through, and one not allowed is refused by
// a rule. Each action runs on an administrator of its own.
func TestAllowedMatchesTheServices(t *testing.T) {
	s := storetest.SQLite(t)
	ctx := storetest.Context(context.Background())
	org, owner, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "acme", Name: "Acme"},
		Owner: store.Administrator{UserName: "owner", Email: "owner@example.com", GivenName: "O", FamilyName: "Owner",
			Role: store.RoleSuperAdministrator, Status: store.StatusActive}})
	if err != nil {
		t.Fatal(err)
	}
	svc := &admin.Administrators{Store: s}
	n := 0
	create := func(role store.Role, status store.Status) store.Administrator {
		n++
		a, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: org.ID, UserName: fmt.Sprintf("target%d", n),
			Email: fmt.Sprintf("t%d@example.com", n), GivenName: "T", FamilyName: "Target", Role: role, Status: status})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ann := create(store.RoleAdministrator, store.StatusActive)
	principals := map[string]admin.Principal{"super": admin.PrincipalOf(owner), "administrator": admin.PrincipalOf(ann)}
	targets := []struct {
		name   string
		role   store.Role
		status store.Status
	}{
		{"super", store.RoleSuperAdministrator, store.StatusActive},
		{"active", store.RoleAdministrator, store.StatusActive},
		{"pending", store.RoleAdministrator, store.StatusPending},
		{"deactivated", store.RoleAdministrator, store.StatusDeactivated},
	}
	other := func(r store.Role) store.Role {
		if r == store.RoleSuperAdministrator {
			return store.RoleAdministrator
		}
		return store.RoleSuperAdministrator
	}
	actions := []struct {
		name    string
		allowed func(admin.Allowed) bool
		do      func(admin.Principal, store.Administrator) error
	}{
		{"edit", func(a admin.Allowed) bool { return a.Edit }, func(p admin.Principal, a store.Administrator) error {
			name := "Changed"
			_, err := svc.Update(ctx, p, a.ID, admin.Edit{GivenName: &name})
			return err
		}},
		{"change role", func(a admin.Allowed) bool { return a.ChangeRole }, func(p admin.Principal, a store.Administrator) error {
			r := other(a.Role)
			_, err := svc.Update(ctx, p, a.ID, admin.Edit{Role: &r})
			return err
		}},
		{"deactivate", func(a admin.Allowed) bool { return a.Deactivate }, func(p admin.Principal, a store.Administrator) error {
			_, err := svc.Deactivate(ctx, p, a.ID)
			return err
		}},
		{"reactivate", func(a admin.Allowed) bool { return a.Reactivate }, func(p admin.Principal, a store.Administrator) error {
			_, err := svc.Reactivate(ctx, p, a.ID)
			return err
		}},
		{"delete", func(a admin.Allowed) bool { return a.Delete }, func(p admin.Principal, a store.Administrator) error {
			return svc.Delete(ctx, p, a.ID)
		}},
		{"resend", func(a admin.Allowed) bool { return a.Resend }, func(p admin.Principal, a store.Administrator) error {
			return svc.Resend(ctx, p, a.ID)
		}},
	}
	refusals := map[string]bool{admin.CodeForbidden: true, admin.CodeForbiddenRole: true, admin.CodeSuperAdminProtected: true,
		admin.CodeSCIMEnabled: true, admin.CodeAlreadyDeactivated: true, admin.CodeNotDeactivated: true, admin.CodeNotPending: true}
	for _, scim := range []bool{false, true} {
		o, err := s.UpdateOrg(ctx, org.ID, func(o *store.Org) error { o.SCIMEnabled = scim; return nil })
		if err != nil {
			t.Fatal(err)
		}
		for pname, p := range principals {
			for _, tg := range targets {
				for _, act := range actions {
					a := create(tg.role, tg.status)
					allowed := act.allowed(admin.AllowedOn(p, o, a))
					err := act.do(p, a)
					var e *admin.Error
					refused := errors.As(err, &e) && refusals[e.Code]
					if err != nil && !refused {
						t.Fatalf("scim %v, %s: %s on %s: %v", scim, pname, act.name, tg.name, err)
					}
					if allowed != (err == nil) {
						t.Errorf("scim %v, %s: %s on %s: AllowedOn says %v, the service answered %v", scim, pname, act.name, tg.name, allowed, err)
					}
				}
			}
		}
	}
}
