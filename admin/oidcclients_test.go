package admin_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

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
			secret, c, err := clients.Create(ctx, spec)
			var e *admin.Error
			if !errors.As(err, &e) || secret != "" || c.ID != "" {
				t.Errorf("%s: %q, %+v, %v; want a refusal", name, secret, c, err)
			}
		}
		storetest.AssertUnchanged(t, s, before)

		secret, conf, err := clients.Create(ctx, admin.OIDCClientSpec{Name: "Billing", RedirectURIs: []string{"https://billing.example/cb", "https://billing.example/cb"},
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
		got, err := clients.Authenticate(ctx, conf.ID, secret)
		if err != nil || got.ID != conf.ID {
			t.Fatalf("Authenticate with the secret: %+v, %v", got, err)
		}

		pubSecret, pub, err := clients.Create(ctx, admin.OIDCClientSpec{Name: "SPA", Public: true, RedirectURIs: []string{"http://localhost:5173/cb"}})
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
			if _, err := clients.Authenticate(ctx, try[0], try[1]); !errors.Is(err, admin.ErrBadClient) {
				t.Errorf("%s: %v, want ErrBadClient", name, err)
			}
		}

		list, err := clients.List(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("list %+v, %v", list, err)
		}
		if err := clients.Delete(ctx, conf.ID); err != nil {
			t.Fatal(err)
		}
		var e *admin.Error
		if err := clients.Delete(ctx, conf.ID); !errors.As(err, &e) || e.Code != admin.CodeNotFound {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := clients.Authenticate(ctx, conf.ID, secret); !errors.Is(err, admin.ErrBadClient) {
			t.Fatalf("a deleted client authenticates: %v", err)
		}
	})
}
