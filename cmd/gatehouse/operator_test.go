package main

import (
	"context"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestOperatorCommands(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		ctx := storetest.Context(context.Background())
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_OPERATOR": "support-jo"}
		if r := gatehouse(t, env, orgArgs("acme")...); r.code != 0 {
			t.Fatalf("setup: exit %d: %s", r.code, r.stderr)
		}
		org, _ := s.OrgBySlug(ctx, "acme")
		owner, err := s.AdministratorByUsername(ctx, org.ID, "Jane.Doe")
		if err != nil {
			t.Fatal(err)
		}
		// Two active Super Administrators: the owner and a second one.
		if _, err := s.UpdateAdministrator(ctx, org.ID, owner.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Status = store.StatusActive; return nil }); err != nil {
			t.Fatal(err)
		}
		second, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: org.ID, UserName: "Second", Email: "second@acme.test",
			GivenName: "S", FamilyName: "S", Role: store.RoleSuperAdministrator, Status: store.StatusActive})
		if err != nil {
			t.Fatal(err)
		}

		// Domains.
		if r := gatehouse(t, env, "domain", "add", "--org", "acme", "Example.ORG"); r.code != 0 || !strings.Contains(r.stdout, "example.org registered") {
			t.Fatalf("domain add: %d %q %q", r.code, r.stdout, r.stderr)
		}
		before := storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "domain", "add", "--org", "acme", "example.org"), 1, "already registered", s, before)
		assertRefused(t, gatehouse(t, env, "domain", "add", "--org", "acme", "not a domain"), 1, "invalid domain", s, before)
		assertRefused(t, gatehouse(t, env, "domain", "remove", "--org", "acme", "nowhere.test"), 1, "not registered", s, before)
		if r := gatehouse(t, env, "domain", "list", "--org", "acme"); r.stdout != "example.org\n" {
			t.Fatalf("domain list: %q", r.stdout)
		}
		if r := gatehouse(t, env, "domain", "remove", "--org", "acme", "example.org"); r.code != 0 {
			t.Fatalf("domain remove: %d %s", r.code, r.stderr)
		}

		// A Super Administrator is deactivated only here; the exact
		// username is needed.
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "administrator", "deactivate", "--org", "acme", "second"), 1, "not found", s, before)
		if r := gatehouse(t, env, "administrator", "deactivate", "--org", "acme", "Second"); r.code != 0 || !strings.Contains(r.stdout, "Deactivated") {
			t.Fatalf("deactivate: %d %q %q", r.code, r.stdout, r.stderr)
		}
		// The owner is now the last active one.
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "administrator", "deactivate", "--org", "acme", "Jane.Doe"), 1,
			"at least one Super Administrator", s, before)

		// The SCIM lock holds here too, unless overridden (audited).
		if r := gatehouse(t, env, "scim", "enable", "--org", "acme"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "administrator", "reactivate", "--org", "acme", "Second"), 1, "SCIM is enabled", s, before)
		if r := gatehouse(t, env, "administrator", "reactivate", "--org", "acme", "Second", "--override-scim-lock"); r.code != 0 || !strings.Contains(r.stdout, "Active") {
			t.Fatalf("reactivate with override: %d %q %q", r.code, r.stdout, r.stderr)
		}
		log, err := s.AuditLog(ctx, org.ID, store.AuditQuery{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) < 2 || log[0].Action != store.AuditAdministratorUpdate || log[0].TargetID != second.ID || log[1].Action != "scim_lock.override" ||
			log[0].ActorKind != store.ActorOperator || log[0].ActorName != "support-jo" || log[1].ActorName != "support-jo" {
			t.Fatalf("audit log: %+v", log)
		}

		// A lost phone: the operator removes the second factor; a lockout
		// is ended the same way. Both audited as the operator.
		if _, err := s.UpdateCredentials(ctx, org.ID, owner.ID, store.CredentialsChange{Action: "credentials.update",
			Update: func(c *store.Credentials) error {
				c.TOTPEnabled, c.TOTPSecret = true, "v1.sealed"
				return nil
			}}); err != nil {
			t.Fatal(err)
		}
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "administrator", "reset-totp", "--org", "acme", "jane.doe"), 1, "not found", s, before)
		for _, verb := range []string{"reset-totp", "unlock"} {
			if r := gatehouse(t, env, "administrator", verb, "--org", "acme", "Jane.Doe"); r.code != 0 {
				t.Fatalf("%s: %d %s", verb, r.code, r.stderr)
			}
		}
		cred, err := s.Credentials(ctx, org.ID, owner.ID)
		if err != nil || cred.TOTPEnabled || cred.TOTPSecret != "" {
			t.Fatalf("credentials after reset-totp and unlock: %+v, %v", cred, err)
		}
		resets, _ := s.AuditLog(ctx, org.ID, store.AuditQuery{TargetID: owner.ID, Action: "credentials."})
		if len(resets) < 2 || resets[0].Action != "credentials.unlock" || resets[1].Action != "credentials.totp_reset" || resets[0].ActorName != "support-jo" {
			t.Fatalf("audit of the credential commands: %+v", resets)
		}

		// API keys for the management API, printed once.
		r := gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "automation", "--expires", "30d")
		key := strings.TrimSpace(r.stdout)
		if r.code != 0 || !strings.HasPrefix(key, admin.APIKeyPrefix) || !strings.Contains(r.stderr, "will not be shown again") {
			t.Fatalf("api-key create: %d %q %q", r.code, r.stdout, r.stderr)
		}
		stored, err := s.APIKeyByHash(ctx, admin.HashSecret(key))
		if err != nil || stored.Role != store.RoleSuperAdministrator || stored.ExpiresAt == nil || stored.Name != "automation" {
			t.Fatalf("stored key %+v, %v", stored, err)
		}
		before = storetest.TakeSnapshot(t, s)
		assertRefused(t, gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "x", "--role", "Owner"), 1, "unknown role", s, before)
		assertRefused(t, gatehouse(t, env, "api-key", "create", "--org", "acme"), 1, "name is required", s, before)
	})
}
