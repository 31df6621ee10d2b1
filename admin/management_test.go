package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// TestSCIMTokensForManagementRequests: the management API and the console
// manage SCIM tokens through Issue, List and Revoke, which hold the
// Super Administrator rule: an Administrator is refused each one and
// nothing changes; a Super Administrator's token is listed, audited as
// theirs, and revoked once.
func TestSCIMTokensForManagementRequests(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		org, owner, _, err := (&admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}).Create(storetest.Context(ctx), validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		tokens := &admin.SCIMTokens{Store: s}
		super := admin.PrincipalOf(owner)
		plain := super
		plain.Role = store.RoleAdministrator

		before := storetest.TakeSnapshot(t, s)
		_, _, err = tokens.Issue(ctx, plain, "mine", 0)
		assertCode(t, err, admin.CodeForbidden)
		_, err = tokens.List(ctx, plain)
		assertCode(t, err, admin.CodeForbidden)
		storetest.AssertUnchanged(t, s, before)

		secret, tok, err := tokens.Issue(ctx, super, "Okta", 24*time.Hour)
		if err != nil || !strings.HasPrefix(secret, admin.SCIMTokenPrefix) {
			t.Fatalf("issue: %q %v", secret, err)
		}
		list, err := tokens.List(ctx, super)
		if err != nil || len(list) != 1 || list[0].ID != tok.ID {
			t.Fatalf("list: %+v %v", list, err)
		}
		log, err := s.AuditLog(ctx, org.ID, store.AuditQuery{Action: store.AuditSCIMTokenCreate})
		if err != nil || len(log) != 1 || log[0].ActorID != owner.ID {
			t.Fatalf("the creation's audit entry: %+v %v", log, err)
		}

		assertCode(t, tokens.Revoke(ctx, plain, tok.ID), admin.CodeForbidden)
		assertCode(t, tokens.Revoke(ctx, super, "no-such-token"), admin.CodeNotFound)
		if err := tokens.Revoke(ctx, super, tok.ID); err != nil {
			t.Fatal(err)
		}
		list, _ = tokens.List(ctx, super)
		if list[0].RevokedAt == nil {
			t.Fatal("the token is not revoked")
		}
	})
}

// TestLifetimeDays: 0 is no expiry; 1 to 3650 days; anything else is
// refused with invalid_expiry naming the field.
func TestLifetimeDays(t *testing.T) {
	for _, tc := range []struct {
		days int
		want time.Duration
		ok   bool
	}{{0, 0, true}, {1, 24 * time.Hour, true}, {3650, 3650 * 24 * time.Hour, true}, {-1, 0, false}, {3651, 0, false}} {
		got, err := admin.LifetimeDays(tc.days, "expiresInDays")
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("%d days: %v %v, want %v", tc.days, got, err, tc.want)
		}
		if !tc.ok {
			assertCode(t, err, admin.CodeInvalidExpiry)
			if !strings.Contains(err.Error(), "expiresInDays") {
				t.Errorf("%d days: %v does not name the field", tc.days, err)
			}
		}
	}
}

// TestSuperAdminGroupPreference: a Super Administrator designates the
// group through SetPreferences (and "" designates none); an
// Administrator and a name with a control character are refused, and
// change nothing.
func TestSuperAdminGroupPreference(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := context.Background()
		orgs := &admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}
		org, owner, _, err := orgs.Create(storetest.Context(ctx), validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		super := admin.PrincipalOf(owner)
		plain := super
		plain.Role = store.RoleAdministrator
		group := func(g string) admin.Preferences { return admin.Preferences{SuperAdminGroup: &g} }

		before := storetest.TakeSnapshot(t, s)
		_, err = orgs.SetPreferences(ctx, plain, group("Admins"))
		assertCode(t, err, admin.CodeForbidden)
		_, err = orgs.SetPreferences(ctx, super, group("Admins\x00"))
		assertCode(t, err, admin.CodeInvalidName)
		storetest.AssertUnchanged(t, s, before)

		o, err := orgs.SetPreferences(ctx, super, group("Gatehouse Admins"))
		if err != nil || o.SuperAdminGroup != "Gatehouse Admins" || o.RequireTOTP != org.RequireTOTP {
			t.Fatalf("designate: %+v %v", o, err)
		}
		if o, err = orgs.SetPreferences(ctx, super, group("")); err != nil || o.SuperAdminGroup != "" {
			t.Fatalf("designate none: %+v %v", o, err)
		}
	})
}
