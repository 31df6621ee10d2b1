package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestAPIKeys(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		org, _, _, err := (&admin.Orgs{Store: s, BaseURL: "http://localhost:8080"}).Create(ctx, validSpec("acme"))
		if err != nil {
			t.Fatal(err)
		}
		clock := time.Now()
		keys := &admin.APIKeys{Store: s, Now: func() time.Time { return clock }}
		super := admin.Principal{OrgID: org.ID, Role: store.RoleSuperAdministrator, Actor: store.Actor{Kind: store.ActorAdministrator, Name: "owner"}}
		plain := admin.Principal{OrgID: org.ID, Role: store.RoleAdministrator, Actor: store.Actor{Kind: store.ActorAdministrator, Name: "ann"}}

		// Only Super Administrators create keys; a refusal writes nothing.
		before := storetest.TakeSnapshot(t, s)
		_, _, err = keys.Create(ctx, plain, admin.APIKeySpec{Name: "x"})
		assertCode(t, err, admin.CodeForbidden)
		_, _, err = keys.Create(ctx, super, admin.APIKeySpec{Name: "x", Role: "Owner"})
		assertCode(t, err, admin.CodeInvalidRole)
		_, _, err = keys.Create(ctx, super, admin.APIKeySpec{Name: " "})
		assertCode(t, err, admin.CodeInvalidName)
		_, _, err = keys.Create(ctx, super, admin.APIKeySpec{Name: "x", TTL: -time.Hour})
		assertCode(t, err, admin.CodeInvalidExpiry)
		storetest.AssertUnchanged(t, s, before)

		secret, key, err := keys.Create(ctx, super, admin.APIKeySpec{Name: "deploy", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, admin.APIKeyPrefix) || key.Prefix != secret[:len(key.Prefix)] || key.Role != store.RoleAdministrator ||
			key.CreatedBy != "owner" {
			t.Fatalf("key %+v for %q", key, secret)
		}
		assertNotStored(t, s, secret, decodeSecret(t, strings.TrimPrefix(secret, admin.APIKeyPrefix)))

		got, err := keys.Authenticate(ctx, secret)
		if err != nil || got.ID != key.ID || got.LastUsedAt == nil {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		p := admin.KeyPrincipal(got)
		if p.OrgID != org.ID || p.Role != store.RoleAdministrator || p.Actor.Kind != store.ActorAPIKey || p.Actor.Name != "deploy" || p.Super() {
			t.Fatalf("principal %+v", p)
		}
		// A secret one character off, or of another kind, is no key.
		last := "A"
		if strings.HasSuffix(secret, last) {
			last = "B"
		}
		for _, bad := range []string{secret[:len(secret)-1] + last, secret + "x", "", strings.TrimPrefix(secret, admin.APIKeyPrefix)} {
			if _, err := keys.Authenticate(ctx, bad); !errors.Is(err, admin.ErrBadKey) {
				t.Fatalf("Authenticate(%q) = %v", bad, err)
			}
		}
		// Expired: refused from its expiry on.
		clock = key.ExpiresAt.Add(0)
		if _, err := keys.Authenticate(ctx, secret); !errors.Is(err, admin.ErrBadKey) {
			t.Fatalf("expired key: %v", err)
		}
		// Revoked: refused, and revoking is for Super Administrators.
		clock = time.Now()
		second, k2, _ := keys.Create(ctx, super, admin.APIKeySpec{Name: "second"})
		assertCode(t, keys.Revoke(ctx, plain, k2.ID), admin.CodeForbidden)
		assertCode(t, keys.Revoke(ctx, super, "no-such-key"), admin.CodeNotFound)
		if err := keys.Revoke(ctx, super, k2.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Authenticate(ctx, second); !errors.Is(err, admin.ErrBadKey) {
			t.Fatalf("revoked key: %v", err)
		}
		list, err := keys.List(ctx, super)
		if err != nil || len(list) != 2 || list[0].ID != k2.ID || list[0].RevokedAt == nil {
			t.Fatalf("List = %+v, %v", list, err)
		}
		if _, err := keys.List(ctx, plain); err == nil {
			t.Fatal("an Administrator listed the keys")
		}
	})
}
