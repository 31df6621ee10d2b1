package admin_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestCheckClientURI(t *testing.T) {
	for _, ok := range []string{
		"https://app.example/callback",
		"https://app.example:8443/cb?tenant=a",
		"http://127.0.0.1:8000/cb",
		"http://[::1]:8000/cb",
		"http://localhost/cb",
		"https://APP.example/Callback/", // stored and matched exactly as given
	} {
		if err := admin.CheckClientURI("redirect URI", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"",
		"/callback",                        // relative
		"app.example/cb",                   // no scheme
		"http://app.example/cb",            // http off loopback
		"http://127.0.0.2/cb",              // not one of the loopback hosts named
		"http://localhost.evil.example/cb", // a name that only starts like one
		"http://127.0.0.1.nip.io/cb",       // idem
		"https://app.example/cb#frag",      // fragment (RFC 6749 §3.1.2)
		"https://app.example/cb#",          // empty fragment
		"https://*.app.example/cb",         // wildcard
		"https://app.example/*",            // wildcard
		"https://user:pw@app.example/cb",   // credentials
		"javascript:alert(1)",              // not a URL with a host
		"custom.scheme:/cb",                // native app schemes: not in this increment
		"https://app.example/c b",          // space
		"https://app.example/cb\n",         // control character
		"https://" + strings.Repeat("a", 2001),
	} {
		err := admin.CheckClientURI("redirect URI", bad)
		var e *admin.Error
		if !errors.As(err, &e) || e.Code != admin.CodeInvalidRedirectURI {
			t.Errorf("%q: %v, want %s", bad, err, admin.CodeInvalidRedirectURI)
		}
	}
}

func TestOIDCClients(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		acme, _, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: "acme", Name: "Acme"},
			Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusPending}})
		if err != nil {
			t.Fatal(err)
		}
		clients := &admin.OIDCClients{Store: s}
		op := admin.Principal{Operator: true, Actor: store.Actor{Kind: store.ActorOperator, Name: "ops"}}

		// Refusals write nothing.
		before := storetest.TakeSnapshot(t, s)
		for name, spec := range map[string]admin.OIDCClientSpec{
			"no name":         {RedirectURIs: []string{"https://a.example/cb"}},
			"no redirect":     {Name: "A"},
			"bad redirect":    {Name: "A", RedirectURIs: []string{"https://a.example/cb", "http://a.example/cb"}},
			"bad logout":      {Name: "A", RedirectURIs: []string{"https://a.example/cb"}, BackchannelLogoutURI: "https://a.example/bcl#x"},
			"unknown org":     {Name: "A", RedirectURIs: []string{"https://a.example/cb"}, Orgs: []string{"acme", "nope"}},
			"too many URIs":   {Name: "A", RedirectURIs: slices.Repeat([]string{"https://a.example/cb"}, 21)},
			"wildcard":        {Name: "A", RedirectURIs: []string{"https://a.example/*"}},
			"control in name": {Name: "A\x00", RedirectURIs: []string{"https://a.example/cb"}},
			"public, bad URI": {Name: "A", Public: true, RedirectURIs: []string{"https://a.example/cb#"}},
		} {
			secret, c, err := clients.Create(ctx, op, spec)
			var e *admin.Error
			if !errors.As(err, &e) || secret != "" || c.ID != "" {
				t.Errorf("%s: %q, %+v, %v; want a refusal", name, secret, c, err)
			}
		}
		storetest.AssertUnchanged(t, s, before)

		secret, conf, err := clients.Create(ctx, op, admin.OIDCClientSpec{Name: "Billing", RedirectURIs: []string{"https://billing.example/cb", "https://billing.example/cb"},
			BackchannelLogoutURI: "https://billing.example/bcl", Orgs: []string{"acme"}, FirstParty: true})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, admin.OIDCClientSecretPrefix) {
			t.Fatalf("secret %q", secret)
		}
		raw := decodeSecret(t, strings.TrimPrefix(secret, admin.OIDCClientSecretPrefix))
		assertNotStored(t, s, secret, raw)
		if conf.AllOrgs || !slices.Equal(conf.OrgIDs, []string{acme.ID}) || !slices.Equal(conf.RedirectURIs, []string{"https://billing.example/cb"}) || !conf.FirstParty {
			t.Fatalf("client %+v", conf)
		}
		if err := clients.Authenticate(ctx, conf.ID, secret); err != nil {
			t.Fatalf("Authenticate with the secret: %v", err)
		}

		pubSecret, pub, err := clients.Create(ctx, op, admin.OIDCClientSpec{Name: "SPA", Public: true, RedirectURIs: []string{"http://localhost:5173/cb"}})
		if err != nil || pubSecret != "" || !pub.Public || len(pub.SecretHash) != 0 || !pub.AllOrgs {
			t.Fatalf("public client %q, %+v, %v", pubSecret, pub, err)
		}

		// Wrong secrets, another client's secret, a public client, an
		// unknown client: one error, never which.
		for name, try := range map[string][2]string{
			"wrong secret":           {conf.ID, secret + "x"},
			"empty secret":           {conf.ID, ""},
			"public client":          {pub.ID, ""},
			"public with the secret": {pub.ID, secret},
			"unknown client":         {"no-such-client", secret},
		} {
			if err := clients.Authenticate(ctx, try[0], try[1]); !errors.Is(err, admin.ErrBadClient) {
				t.Errorf("%s: %v, want ErrBadClient", name, err)
			}
		}

		list, err := clients.List(ctx, op)
		if err != nil || len(list) != 2 {
			t.Fatalf("list %+v, %v", list, err)
		}
		if err := clients.Delete(ctx, op, conf.ID); err != nil {
			t.Fatal(err)
		}
		var e *admin.Error
		if err := clients.Delete(ctx, op, conf.ID); !errors.As(err, &e) || e.Code != admin.CodeNotFound {
			t.Fatalf("second delete: %v", err)
		}
		if err := clients.Authenticate(ctx, conf.ID, secret); !errors.Is(err, admin.ErrBadClient) {
			t.Fatalf("a deleted client authenticates: %v", err)
		}
	})
}

// TestOIDCClientRights tries, on both databases, what a Super
// Administrator of another organization and an Administrator must not do
// to applications: read, change, rotate or delete them, or register one
// for other organizations. Every refusal writes nothing.
func TestOIDCClientRights(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		orgA, superA := superOf(t, s, "org-a")
		_, superB := superOf(t, s, "org-b")
		adminA := admin.Principal{OrgID: orgA.ID, Role: store.RoleAdministrator, AdministratorID: "adm",
			Actor: store.Actor{Kind: store.ActorAdministrator, ID: "adm", Name: "adm"}}
		op := admin.Principal{Operator: true, Actor: store.Actor{Kind: store.ActorOperator, Name: "ops"}}
		clients := &admin.OIDCClients{Store: s}
		create := func(p admin.Principal, name string, orgs ...string) (string, store.OIDCClient) {
			t.Helper()
			secret, c, err := clients.Create(ctx, p, admin.OIDCClientSpec{Name: name, RedirectURIs: []string{"https://" + name + ".example/cb"}, Orgs: orgs})
			if err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
			return secret, c
		}
		_, shared := create(op, "shared")
		_, both := create(op, "both", "org-a", "org-b")
		aSecret, aOwn := create(superA, "a-own") // no organizations named: their own
		_, bOwn := create(superB, "b-own", "org-b")
		if aOwn.AllOrgs || !slices.Equal(aOwn.OrgIDs, []string{orgA.ID}) {
			t.Fatalf("a Super Administrator's client serves %v (all: %t), want only their organization", aOwn.OrgIDs, aOwn.AllOrgs)
		}
		names := func(p admin.Principal) []string {
			list, err := clients.List(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range list {
				out = append(out, c.Name)
			}
			return out
		}
		if got := names(superB); !slices.Equal(got, []string{"shared", "both", "b-own"}) {
			t.Errorf("Super Administrator of B lists %v", got)
		}
		if got := names(op); len(got) != 4 {
			t.Errorf("operator lists %v", got)
		}

		code := func(err error) string {
			var e *admin.Error
			if errors.As(err, &e) {
				return e.Code
			}
			return fmt.Sprint(err)
		}
		yes, no := true, false
		name := "taken over"
		attacks := []struct {
			name string
			do   func() error
			want string
		}{
			{"B reads A's client", func() error { _, err := clients.Get(ctx, superB, aOwn.ID); return err }, admin.CodeNotFound},
			{"B renames A's client", func() error {
				_, err := clients.Update(ctx, superB, aOwn.ID, admin.OIDCClientEdit{Name: &name})
				return err
			}, admin.CodeNotFound},
			{"B redirects A's client", func() error {
				_, err := clients.Update(ctx, superB, aOwn.ID, admin.OIDCClientEdit{RedirectURIs: &[]string{"https://evil.example/cb"}})
				return err
			}, admin.CodeNotFound},
			{"B rotates A's secret", func() error { _, _, err := clients.RotateSecret(ctx, superB, aOwn.ID); return err }, admin.CodeNotFound},
			{"B disables A's client", func() error { _, err := clients.SetDisabled(ctx, superB, aOwn.ID, true); return err }, admin.CodeNotFound},
			{"B deletes A's client", func() error { return clients.Delete(ctx, superB, aOwn.ID) }, admin.CodeNotFound},
			{"B redirects the shared client", func() error {
				_, err := clients.Update(ctx, superB, shared.ID, admin.OIDCClientEdit{RedirectURIs: &[]string{"https://evil.example/cb"}})
				return err
			}, admin.CodeForbidden},
			{"B rotates the shared secret", func() error { _, _, err := clients.RotateSecret(ctx, superB, shared.ID); return err }, admin.CodeForbidden},
			{"B disables the shared client", func() error { _, err := clients.SetDisabled(ctx, superB, shared.ID, true); return err }, admin.CodeForbidden},
			{"B deletes the shared client", func() error { return clients.Delete(ctx, superB, shared.ID) }, admin.CodeForbidden},
			{"B deletes a client of A and B", func() error { return clients.Delete(ctx, superB, both.ID) }, admin.CodeForbidden},
			{"B rotates a client of A and B", func() error { _, _, err := clients.RotateSecret(ctx, superB, both.ID); return err }, admin.CodeForbidden},
			{"B registers a client for A", func() error {
				_, _, err := clients.Create(ctx, superB, admin.OIDCClientSpec{Name: "x", RedirectURIs: []string{"https://x.example/cb"}, Orgs: []string{"org-a"}})
				return err
			}, admin.CodeForbidden},
			{"B registers a client for B and A", func() error {
				_, _, err := clients.Create(ctx, superB, admin.OIDCClientSpec{Name: "x", RedirectURIs: []string{"https://x.example/cb"}, Orgs: []string{"org-b", "org-a"}})
				return err
			}, admin.CodeForbidden},
			{"B registers a client for an unknown organization", func() error {
				_, _, err := clients.Create(ctx, superB, admin.OIDCClientSpec{Name: "x", RedirectURIs: []string{"https://x.example/cb"}, Orgs: []string{"nope"}})
				return err
			}, admin.CodeForbidden},
			{"B registers a first-party client", func() error {
				_, _, err := clients.Create(ctx, superB, admin.OIDCClientSpec{Name: "x", RedirectURIs: []string{"https://x.example/cb"}, FirstParty: true})
				return err
			}, admin.CodeForbidden},
			{"B opens its client to A", func() error {
				_, err := clients.Update(ctx, superB, bOwn.ID, admin.OIDCClientEdit{Orgs: &[]string{"org-b", "org-a"}})
				return err
			}, admin.CodeForbidden},
			{"B opens its client to everyone", func() error {
				_, err := clients.Update(ctx, superB, bOwn.ID, admin.OIDCClientEdit{Orgs: &[]string{}})
				return err
			}, admin.CodeForbidden},
			{"B makes its client first-party", func() error {
				_, err := clients.Update(ctx, superB, bOwn.ID, admin.OIDCClientEdit{FirstParty: &yes})
				return err
			}, admin.CodeForbidden},
			{"Administrator lists", func() error { _, err := clients.List(ctx, adminA); return err }, admin.CodeForbidden},
			{"Administrator reads their organization's client", func() error { _, err := clients.Get(ctx, adminA, aOwn.ID); return err }, admin.CodeForbidden},
			{"Administrator registers", func() error {
				_, _, err := clients.Create(ctx, adminA, admin.OIDCClientSpec{Name: "x", RedirectURIs: []string{"https://x.example/cb"}})
				return err
			}, admin.CodeForbidden},
			{"Administrator renames", func() error {
				_, err := clients.Update(ctx, adminA, aOwn.ID, admin.OIDCClientEdit{Name: &name})
				return err
			}, admin.CodeForbidden},
			{"Administrator rotates", func() error { _, _, err := clients.RotateSecret(ctx, adminA, aOwn.ID); return err }, admin.CodeForbidden},
			{"Administrator enables", func() error { _, err := clients.SetDisabled(ctx, adminA, aOwn.ID, false); return err }, admin.CodeForbidden},
			{"Administrator deletes", func() error { return clients.Delete(ctx, adminA, aOwn.ID) }, admin.CodeForbidden},
			{"A rotates an unknown client", func() error { _, _, err := clients.RotateSecret(ctx, superA, "no-such"); return err }, admin.CodeNotFound},
			{"A keeps first-party off but sets it", func() error {
				_, err := clients.Update(ctx, superA, aOwn.ID, admin.OIDCClientEdit{FirstParty: &yes, Name: &name})
				return err
			}, admin.CodeForbidden},
		}
		before := storetest.TakeSnapshot(t, s)
		for _, a := range attacks {
			if got := code(a.do()); got != a.want {
				t.Errorf("%s: %s, want %s", a.name, got, a.want)
			}
		}
		storetest.AssertUnchanged(t, s, before)
		if err := clients.Authenticate(ctx, aOwn.ID, aSecret); err != nil {
			t.Fatalf("A's secret after the attacks: %v", err)
		}

		// What A may do with its own client; first-party unchanged is no change.
		got, err := clients.Update(ctx, superA, aOwn.ID, admin.OIDCClientEdit{Name: &name, FirstParty: &no, Orgs: &[]string{"org-a"},
			PostLogoutRedirectURIs: &[]string{"https://a-own.example/bye", "https://a-own.example/bye"}})
		if err != nil || got.Name != name || !slices.Equal(got.PostLogoutRedirectURIs, []string{"https://a-own.example/bye"}) {
			t.Fatalf("A updates its client: %+v, %v", got, err)
		}
		if c, err := clients.Get(ctx, superA, shared.ID); err != nil || c.ID != shared.ID {
			t.Fatalf("A reads the shared client: %v", err)
		}
		newSecret, _, err := clients.RotateSecret(ctx, superA, aOwn.ID)
		if err != nil || newSecret == aSecret {
			t.Fatalf("A rotates: %v", err)
		}
		if err := clients.Authenticate(ctx, aOwn.ID, aSecret); !errors.Is(err, admin.ErrBadClient) {
			t.Fatalf("the old secret after rotation: %v", err)
		}
		if err := clients.Authenticate(ctx, aOwn.ID, newSecret); err != nil {
			t.Fatalf("the new secret: %v", err)
		}
		assertNotStored(t, s, newSecret, decodeSecret(t, strings.TrimPrefix(newSecret, admin.OIDCClientSecretPrefix)))
		if _, err := clients.SetDisabled(ctx, superA, aOwn.ID, true); err != nil {
			t.Fatal(err)
		}
		if err := clients.Delete(ctx, superA, aOwn.ID); err != nil {
			t.Fatal(err)
		}
		log, _ := s.AuditLog(ctx, store.ServerAudit, store.AuditQuery{TargetID: aOwn.ID})
		if len(log) != 5 || log[0].ActorID != superA.AdministratorID || log[4].ActorID != superA.AdministratorID {
			t.Fatalf("audit of A's client: %+v", log)
		}
	})
}

// TestOIDCClientUpdate: an update is validated completely before it
// writes, and a public client's secret cannot be rotated.
func TestOIDCClientUpdate(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		op := admin.Principal{Operator: true, Actor: store.Actor{Kind: store.ActorOperator, Name: "ops"}}
		clients := &admin.OIDCClients{Store: s}
		_, pub, err := clients.Create(ctx, op, admin.OIDCClientSpec{Name: "SPA", Public: true, RedirectURIs: []string{"https://spa.example/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		empty, long := "", strings.Repeat("x", 300)
		bad := "https://spa.example/cb#f"
		before := storetest.TakeSnapshot(t, s)
		for name, edit := range map[string]admin.OIDCClientEdit{
			"empty name":           {Name: &empty},
			"long name":            {Name: &long},
			"no redirect URIs":     {RedirectURIs: &[]string{}},
			"bad redirect URI":     {RedirectURIs: &[]string{"https://spa.example/ok", bad}},
			"bad post-logout URI":  {PostLogoutRedirectURIs: &[]string{bad}},
			"too many post-logout": {PostLogoutRedirectURIs: ptr(slices.Repeat([]string{"https://spa.example/bye"}, 21))},
			"bad back-channel URI": {BackchannelLogoutURI: &bad},
			"unknown organization": {Orgs: &[]string{"nope"}},
		} {
			if _, err := clients.Update(ctx, op, pub.ID, edit); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		if _, _, err := clients.RotateSecret(ctx, op, pub.ID); err == nil || !strings.Contains(err.Error(), "public") {
			t.Errorf("rotating a public client's secret: %v", err)
		}
		storetest.AssertUnchanged(t, s, before)
	})
}

func ptr[T any](v T) *T { return &v }

// superOf makes an organization and returns it with its owner, a Super
// Administrator, as a principal.
func superOf(t *testing.T, s *store.SQL, slug string) (store.Org, admin.Principal) {
	t.Helper()
	o, owner, err := s.CreateOrg(ctx, store.NewOrg{Org: store.Org{Slug: slug, Name: slug},
		Owner: store.Administrator{UserName: "owner", Role: store.RoleSuperAdministrator, Status: store.StatusPending}})
	if err != nil {
		t.Fatal(err)
	}
	return o, admin.PrincipalOf(owner)
}

// TestOIDCClientsPerOrgLimit: a Super Administrator's registration past
// store.MaxOIDCClientsPerOrg is refused with limit_reached and writes
// nothing (the bound under concurrency: storetest's OIDCClientsPerOrg).
func TestOIDCClientsPerOrgLimit(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		_, super := superOf(t, s, "full")
		clients := &admin.OIDCClients{Store: s}
		spec := admin.OIDCClientSpec{Name: "App", RedirectURIs: []string{"https://app.example/cb"}}
		for range store.MaxOIDCClientsPerOrg {
			if _, _, err := clients.Create(ctx, super, spec); err != nil {
				t.Fatal(err)
			}
		}
		before := storetest.TakeSnapshot(t, s)
		_, _, err := clients.Create(ctx, super, spec)
		var e *admin.Error
		if !errors.As(err, &e) || e.Code != admin.CodeLimitReached {
			t.Fatalf("registration past the bound: %v, want %s", err, admin.CodeLimitReached)
		}
		storetest.AssertUnchanged(t, s, before)
	})
}

// TestOIDCClientRightsUnderRace: while a Super Administrator changes,
// rotates and disables their organization's application in a loop, the
// operator opens it to every organization; the rule is decided on the row
// each write changes, so no write of theirs lands after the operator's
// (it would be a change of a shared client), and the later ones are
// refused.
func TestOIDCClientRightsUnderRace(t *testing.T) {
	storetest.EachBackend(t, func(t *testing.T, s *store.SQL) {
		_, super := superOf(t, s, "race")
		op := admin.Principal{Operator: true, Actor: store.Actor{Kind: store.ActorOperator, Name: "ops"}}
		clients := &admin.OIDCClients{Store: s}
		_, app, err := clients.Create(ctx, super, admin.OIDCClientSpec{Name: "App", RedirectURIs: []string{"https://app.example/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		const writers, rounds = 3, 15
		var wg sync.WaitGroup
		refused := make([]int, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					name := fmt.Sprintf("App %d.%d", w, i)
					var err error
					switch i % 3 {
					case 0:
						_, err = clients.Update(ctx, super, app.ID, admin.OIDCClientEdit{Name: &name})
					case 1:
						_, _, err = clients.RotateSecret(ctx, super, app.ID)
					default:
						_, err = clients.SetDisabled(ctx, super, app.ID, i%2 == 0)
					}
					var e *admin.Error
					switch {
					case errors.As(err, &e) && e.Code == admin.CodeForbidden:
						refused[w]++
					case err != nil:
						t.Errorf("writer %d: %v", w, err)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(5 * time.Millisecond)
			if _, err := clients.Update(ctx, op, app.ID, admin.OIDCClientEdit{Orgs: &[]string{}}); err != nil {
				t.Errorf("operator: %v", err)
			}
		}()
		wg.Wait()
		log, err := s.AuditLog(ctx, store.ServerAudit, store.AuditQuery{TargetID: app.ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var opened int64
		for _, e := range log {
			if e.ActorKind == store.ActorOperator {
				opened = e.Seq
			}
		}
		if opened == 0 {
			t.Fatal("the operator's change is not in the log")
		}
		for _, e := range log {
			if e.Seq > opened && e.ActorID == super.AdministratorID {
				t.Errorf("the Super Administrator changed the shared client after the operator opened it: %+v", e)
			}
		}
		if final, _ := s.OIDCClient(ctx, app.ID); !final.AllOrgs {
			t.Fatalf("final client %+v", final)
		}
		t.Logf("writes refused after the operator's change: %v", refused)
	})
}
