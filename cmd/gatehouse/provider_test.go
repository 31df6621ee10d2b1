package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/admin"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// opFixture is gatehouse serve as the OpenID Provider of an application:
// organization acme, its administrator Bob.Ray (active, a password), a
// confidential client whose back-channel logouts land in logouts.
type opFixture struct {
	base, clientID, secret, redirect string
	env                              map[string]string
	store                            *store.SQL
	org                              store.Org
	bob                              store.Administrator
	logouts                          chan string // logout tokens received
}

const (
	opRedirect   = "http://127.0.0.1:1/callback" // never reached: the test reads the code from the redirect
	opPostLogout = "http://127.0.0.1:1/signed-out"
)

// newOPFixture starts serve with serveArgs after its own; the default is
// no refresh reuse grace, so that a reuse is a reuse at once.
func newOPFixture(t *testing.T, dsn string, s *store.SQL, serveArgs ...string) *opFixture {
	t.Helper()
	addr := freeAddr(t)
	f := &opFixture{base: "http://" + addr, redirect: opRedirect, store: s, logouts: make(chan string, 16),
		env: map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey}}
	if r := gatehouse(t, f.env, orgArgs("acme")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	ctx := store.WithActor(context.Background(), store.System)
	f.org, _ = s.OrgBySlug(ctx, "acme")
	f.bob = activeAdministrator(t, s, f.org.ID, "Bob.Ray", store.RoleAdministrator)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.logouts <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(rcv.Close)
	r := gatehouse(t, f.env, "oidc", "client", "create", "--name", "App", "--redirect-uri", f.redirect,
		"--backchannel-logout-uri", rcv.URL+"/backchannel", "--post-logout-redirect-uri", opPostLogout, "--org", "acme", "--first-party")
	lines := strings.Fields(r.stdout)
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("client create: %+v", r)
	}
	f.clientID, f.secret = lines[0], lines[1]
	if len(serveArgs) == 0 {
		serveArgs = []string{"--oidc-refresh-reuse-grace", "0"}
	}
	startServe(t, addr, f.env, append([]string{"--addr", addr, "--base-url", f.base}, serveArgs...)...)
	return f
}

// activeAdministrator makes an active administrator with signinPassword.
func activeAdministrator(t *testing.T, s *store.SQL, org, username string, role store.Role) store.Administrator {
	t.Helper()
	ctx := store.WithActor(context.Background(), store.System)
	a, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: org, UserName: username, GivenName: "Bob", FamilyName: "Ray",
		Email: strings.ToLower(username) + "@acme.test", Role: role, Status: store.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := admin.HashPassword(signinPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateCredentials(ctx, org, a.ID, store.CredentialsChange{Action: store.AuditCredentialsUpdate,
		Update: func(c *store.Credentials) error { c.PasswordHash = hash; return nil }}); err != nil {
		t.Fatal(err)
	}
	return a
}

// browser is a person's browser: cookies, and redirects followed by hand
// so that the one to the application can be read.
type opBrowser struct {
	t      *testing.T
	client *http.Client
}

func newOPBrowser(t *testing.T) *opBrowser {
	jar, _ := cookiejar.New(nil)
	return &opBrowser{t: t, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// authorize follows an authorization URL, signing in with username and
// signinPassword when gatehouse asks, until the redirect to the
// application; it returns that redirect's query.
func (b *opBrowser) authorize(authURL, base, username string) url.Values {
	b.t.Helper()
	next := authURL
	for i := 0; i < 10; i++ {
		res, err := b.client.Get(next)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
			b.t.Fatalf("GET %s: %d %s", next, res.StatusCode, body)
		}
		if strings.HasPrefix(loc, opRedirect) {
			u, _ := url.Parse(loc)
			return u.Query()
		}
		if strings.HasPrefix(loc, "/login?") {
			u, _ := url.Parse(loc)
			form := url.Values{"organization": {"acme"}, "username": {username}, "password": {signinPassword}, "next": {u.Query().Get("next")}}
			res, err := b.client.PostForm(base+"/login/password", form)
			if err != nil {
				b.t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusSeeOther {
				b.t.Fatalf("sign-in: %d", res.StatusCode)
			}
			loc = res.Header.Get("Location")
		}
		if strings.HasPrefix(loc, "/") {
			loc = base + loc
		}
		next = loc
	}
	b.t.Fatalf("no redirect to the application from %s", authURL)
	return nil
}

// introspect asks whether token is active, as clientID with secret.
func introspect(t *testing.T, base, clientID, secret, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	res, body := do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("introspect: %d %s", res.StatusCode, body)
	}
	var out map[string]any
	json.Unmarshal([]byte(body), &out)
	return out
}

func pkce() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestOpenIDProviderWithGoOIDC: a relying party built on go-oidc and
// x/oauth2 signs an administrator in through gatehouse serve (discovery,
// authorization code with PKCE and gatehouse's password sign-in, the ID
// token verified against the JWKS, userinfo, introspection), refreshes
// (rotation), and meets the attacks: a code replayed revokes what it
// gave, a refresh token used twice revokes its family, another client's
// token is inactive for it. Deactivating the administrator then ends it
// all at once and sends the application a back-channel logout token.
func TestOpenIDProviderWithGoOIDC(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		f := newOPFixture(t, dsn, s)
		ctx := context.Background()
		provider, err := gooidc.NewProvider(ctx, f.base)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		conf := oauth2.Config{ClientID: f.clientID, ClientSecret: f.secret, Endpoint: provider.Endpoint(), RedirectURL: f.redirect,
			Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}}
		verifier := provider.Verifier(&gooidc.Config{ClientID: f.clientID})
		// Discovery says what is served, and only that.
		var disc map[string]any
		if err := provider.Claims(&disc); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(disc["response_types_supported"]) != "[code]" || fmt.Sprint(disc["grant_types_supported"]) != "[authorization_code refresh_token]" ||
			disc["device_authorization_endpoint"] != nil || disc["backchannel_logout_supported"] != true ||
			fmt.Sprint(disc["code_challenge_methods_supported"]) != "[S256]" {
			t.Fatalf("discovery: %v", disc)
		}
		browser := newOPBrowser(t)

		signIn := func() (*oauth2.Token, *gooidc.IDToken, string) {
			t.Helper()
			v, _ := pkce()
			state, nonce := "state-"+oauth2.GenerateVerifier()[:8], "nonce-"+oauth2.GenerateVerifier()[:8]
			q := browser.authorize(conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(v)), f.base, "Bob.Ray")
			if q.Get("state") != state || q.Get("code") == "" {
				t.Fatalf("redirect to the application: %v (state %q)", q, state)
			}
			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
			if err != nil {
				t.Fatalf("code exchange: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("ID token: %v", err)
			}
			if idt.Nonce != nonce {
				t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
			}
			return tok, idt, q.Get("code")
		}

		tok, idt, code := signIn()
		var claims struct {
			Sub               string   `json:"sub"`
			PreferredUsername string   `json:"preferred_username"`
			Name              string   `json:"name"`
			Email             string   `json:"email"`
			AMR               []string `json:"amr"`
			OrgID             string   `json:"org_id"`
			OrgSlug           string   `json:"org_slug"`
			Role              string   `json:"role"`
			SID               string   `json:"sid"`
			AuthTime          int64    `json:"auth_time"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Sub != f.bob.ID || claims.PreferredUsername != "Bob.Ray" || claims.Name != "Bob Ray" || claims.Email != "bob.ray@acme.test" ||
			claims.OrgID != f.org.ID || claims.OrgSlug != "acme" || claims.Role != string(store.RoleAdministrator) ||
			strings.Join(claims.AMR, " ") != "pwd" || claims.AuthTime == 0 {
			t.Fatalf("ID token claims: %+v", claims)
		}
		info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || info.Subject != f.bob.ID || info.Email != "bob.ray@acme.test" {
			t.Fatalf("userinfo: %+v %v", info, err)
		}
		if in := introspect(t, f.base, f.clientID, f.secret, tok.AccessToken); in["active"] != true || in["sub"] != f.bob.ID || in["org_slug"] != "acme" {
			t.Fatalf("introspection: %v", in)
		}

		// A second client: it cannot introspect, refresh or revoke the
		// first one's tokens.
		r := gatehouse(t, f.env, "oidc", "client", "create", "--name", "Other", "--redirect-uri", "https://other.example/cb")
		other := strings.Fields(r.stdout)
		if r.code != 0 || len(other) != 2 {
			t.Fatalf("second client: %+v", r)
		}
		if in := introspect(t, f.base, other[0], other[1], tok.AccessToken); in["active"] != false {
			t.Fatalf("another client's introspection: %v", in)
		}
		otherConf := conf
		otherConf.ClientID, otherConf.ClientSecret = other[0], other[1]
		if _, err := otherConf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("another client refreshed the token")
		}

		// Rotation: a refresh gives a new refresh token; the old one
		// presented again revokes the family.
		refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh: %+v %v", refreshed, err)
		}
		if in := introspect(t, f.base, f.clientID, f.secret, refreshed.AccessToken); in["active"] != true {
			t.Fatalf("refreshed access token: %v", in)
		}
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil ||
			!strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("a refresh token used twice: %v", err)
		}
		if in := introspect(t, f.base, f.clientID, f.secret, refreshed.AccessToken); in["active"] != false {
			t.Fatalf("after a reuse, the family's access token: %v", in)
		}
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil {
			t.Fatal("after a reuse, the family's newest refresh token still works")
		}

		// Code replay: refused, and the tokens the code gave are revoked.
		tok2, _, code2 := signIn()
		if code2 == code {
			t.Fatal("two sign-ins got one code")
		}
		if _, err := conf.Exchange(ctx, code2); err == nil {
			t.Fatal("a code was exchanged twice")
		}
		if in := introspect(t, f.base, f.clientID, f.secret, tok2.AccessToken); in["active"] != false {
			t.Fatalf("after a code replay, its access token: %v", in)
		}

		// Deprovisioning: a live sign-in, then the deactivation; at once
		// the tokens are inactive, the refresh refused, and the
		// application gets a logout token naming Bob and the session.
		tok3, idt3, _ := signIn()
		var c3 struct {
			SID string `json:"sid"`
		}
		idt3.Claims(&c3)
		if c3.SID == "" {
			t.Fatal("no sid in the ID token")
		}
		ctxSys := store.WithActor(ctx, store.System)
		if _, err := s.UpdateAdministrator(ctxSys, f.org.ID, f.bob.ID, store.KeepSuper, func(a *store.Administrator) error {
			a.Status = store.StatusDeactivated
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if in := introspect(t, f.base, f.clientID, f.secret, tok3.AccessToken); in["active"] != false {
			t.Fatalf("a deactivated administrator's access token: %v", in)
		}
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token(); err == nil {
			t.Fatal("a deactivated administrator's refresh token works")
		}
		select {
		case lt := <-f.logouts:
			checkLogoutToken(t, ctx, provider, f.clientID, lt, f.bob.ID, c3.SID)
		case <-time.After(10 * time.Second):
			t.Fatal("no back-channel logout within 10 s")
		}
	})
}

// checkLogoutToken verifies a logout token as an application must (OIDC
// Back-Channel Logout 1.0 §2.6).
func checkLogoutToken(t *testing.T, ctx context.Context, p *gooidc.Provider, clientID, raw, sub, sid string) {
	t.Helper()
	tok, err := p.VerifierContext(ctx, &gooidc.Config{ClientID: clientID, SkipExpiryCheck: false}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	var c struct {
		Sub    string                    `json:"sub"`
		SID    string                    `json:"sid"`
		JTI    string                    `json:"jti"`
		Nonce  *string                   `json:"nonce"`
		Events map[string]map[string]any `json:"events"`
	}
	tok.Claims(&c)
	if c.Sub != sub || c.SID != sid || c.JTI == "" || c.Nonce != nil || c.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
		t.Fatalf("logout token claims: %+v", c)
	}
}

// TestDeprovisioningEndsApplicationSignIns: whatever path deactivates or
// deletes an administrator — the management API, SCIM PATCH, PUT or
// DELETE as Okta and Entra send them — their access token is inactive as
// soon as the request is answered, their refresh token refused, and the
// application receives a back-channel logout token naming them.
func TestDeprovisioningEndsApplicationSignIns(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		f := newOPFixture(t, dsn, s)
		ctx := context.Background()
		provider, err := gooidc.NewProvider(ctx, f.base)
		if err != nil {
			t.Fatal(err)
		}
		conf := oauth2.Config{ClientID: f.clientID, ClientSecret: f.secret, Endpoint: provider.Endpoint(), RedirectURL: f.redirect,
			Scopes: []string{gooidc.ScopeOpenID, gooidc.ScopeOfflineAccess}}
		r := gatehouse(t, f.env, "api-key", "create", "--org", "acme", "--name", "ops")
		if r.code != 0 {
			t.Fatal(r.stderr)
		}
		apiKey := strings.TrimSpace(r.stdout)
		send := func(method, path, auth, contentType, body string) {
			t.Helper()
			req, _ := http.NewRequest(method, f.base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+auth)
			if body != "" {
				req.Header.Set("Content-Type", contentType)
			}
			if res, out := do(t, req); res.StatusCode/100 != 2 {
				t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, out)
			}
		}
		var scimToken string
		for _, c := range []struct {
			name string
			end  func(a store.Administrator)
		}{
			{"API deactivate", func(a store.Administrator) {
				send("POST", "/api/v1/administrators/"+a.ID+"/deactivate", apiKey, "", "")
			}},
			{"SCIM PATCH active=false", func(a store.Administrator) {
				if scimToken == "" {
					if r := gatehouse(t, f.env, "scim", "enable", "--org", "acme"); r.code != 0 {
						t.Fatal(r.stderr)
					}
					r := gatehouse(t, f.env, "scim", "token", "create", "--org", "acme")
					if r.code != 0 {
						t.Fatal(r.stderr)
					}
					scimToken = strings.TrimSpace(r.stdout)
				}
				send("PATCH", "/scim/v2/Users/"+a.ID, scimToken, "application/scim+json",
					`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
			}},
			{"SCIM PUT active=false", func(a store.Administrator) {
				send("PUT", "/scim/v2/Users/"+a.ID, scimToken, "application/scim+json", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
					"userName":"`+a.UserName+`","name":{"givenName":"Bob","familyName":"Ray"},"active":false}`)
			}},
			{"SCIM DELETE", func(a store.Administrator) {
				send("DELETE", "/scim/v2/Users/"+a.ID, scimToken, "", "")
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				username := strings.ReplaceAll(c.name, " ", "")
				username = strings.NewReplacer("=", "", "-", "").Replace(username)
				a := activeAdministrator(t, s, f.org.ID, username, store.RoleAdministrator)
				v, _ := pkce()
				q := newOPBrowser(t).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), f.base, username)
				tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
				if err != nil {
					t.Fatal(err)
				}
				c.end(a)
				if in := introspect(t, f.base, f.clientID, f.secret, tok.AccessToken); in["active"] != false {
					t.Fatalf("access token after %s: %v", c.name, in)
				}
				if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
					t.Fatalf("refresh after %s", c.name)
				}
				select {
				case lt := <-f.logouts:
					idt, err := provider.VerifierContext(ctx, &gooidc.Config{ClientID: f.clientID}).Verify(ctx, lt)
					if err != nil || idt.Subject != a.ID {
						t.Fatalf("logout token after %s: sub %v, want %s (%v)", c.name, idt, a.ID, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("no back-channel logout after %s", c.name)
				}
			})
		}
	})
}

// TestOpenIDProviderAcrossInstances: two gatehouse serve instances on one
// PostgreSQL database behind one base URL; each step of a sign-in goes to
// the other instance than the step before — authorize on A, the
// continuation and the code exchange on B, introspection on A, the
// refresh on B, the reuse detection on A — and every step holds.
func TestOpenIDProviderAcrossInstances(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	s := inspect(t, dsn)
	f := newOPFixture(t, dsn, s) // instance A, at the base URL
	addrB := freeAddr(t)
	baseB := "http://" + addrB
	startServe(t, addrB, f.env, "--addr", addrB, "--base-url", f.base, "--oidc-refresh-reuse-grace", "0")
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, f.base)
	if err != nil {
		t.Fatal(err)
	}
	onB := oauth2.Config{ClientID: f.clientID, ClientSecret: f.secret, RedirectURL: f.redirect,
		Endpoint: oauth2.Endpoint{AuthURL: f.base + "/authorize", TokenURL: baseB + "/oauth/token"}, Scopes: []string{"openid", "offline_access"}}
	b := newOPBrowser(t)
	v, _ := pkce()
	res, err := b.client.Get(onB.AuthCodeURL("s", oauth2.S256ChallengeOption(v))) // A
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("authorize on A: %v %v", res, err)
	}
	res.Body.Close()
	// The browser's cookies are the base URL's; B is reached by address,
	// as a load balancer would send it there.
	u, _ := url.Parse(f.base)
	jar := b.client.Jar
	ub, _ := url.Parse(baseB)
	jar.SetCookies(ub, jar.Cookies(u))
	q := b.authorize(baseB+res.Header.Get("Location"), baseB, "Bob.Ray")   // continuation and sign-in on B
	tok, err := onB.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)) // B
	if err != nil {
		t.Fatalf("exchange on B: %v", err)
	}
	if _, err := provider.Verifier(&gooidc.Config{ClientID: f.clientID}).Verify(ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("ID token from B, keys from A: %v", err)
	}
	if in := introspect(t, f.base, f.clientID, f.secret, tok.AccessToken); in["active"] != true { // A
		t.Fatalf("introspection on A of B's token: %v", in)
	}
	refreshed, err := onB.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token() // B
	if err != nil {
		t.Fatalf("refresh on B: %v", err)
	}
	onA := onB
	onA.Endpoint.TokenURL = f.base + "/oauth/token"
	if _, err := onA.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil { // A: the reuse
		t.Fatal("a refresh token used twice across instances")
	}
	if in := introspect(t, baseB, f.clientID, f.secret, refreshed.AccessToken); in["active"] != false {
		t.Fatalf("after the reuse on A, B still accepts the family: %v", in)
	}
}

// TestOpenIDProviderRefreshReuseGrace: an application's parallel
// refreshes with one refresh token (oauth2-proxy's cookie store sends
// them at the moment of a refresh) all get tokens, and the sign-in stays
// live; the same refresh token presented after the grace revokes the
// whole family.
func TestOpenIDProviderRefreshReuseGrace(t *testing.T) {
	dsn := "sqlite:" + t.TempDir() + "/gatehouse.db"
	f := newOPFixture(t, dsn, inspect(t, dsn), "--oidc-refresh-reuse-grace", "2s")
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, f.base)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: f.clientID, ClientSecret: f.secret, Endpoint: provider.Endpoint(), RedirectURL: f.redirect,
		Scopes: []string{gooidc.ScopeOpenID, gooidc.ScopeOfflineAccess}}
	q := newOPBrowser(t).authorize(conf.AuthCodeURL("s"), f.base, "Bob.Ray")
	tok, err := conf.Exchange(ctx, q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	const parallel = 6
	got := make([]*oauth2.Token, parallel)
	errs := make([]error, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Go(func() { got[i], errs[i] = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token() })
	}
	wg.Wait()
	for i := range parallel {
		if errs[i] != nil {
			t.Fatalf("parallel refresh %d: %v", i, errs[i])
		}
		if in := introspect(t, f.base, f.clientID, f.secret, got[i].AccessToken); in["active"] != true {
			t.Fatalf("parallel refresh %d's access token: %v", i, in)
		}
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a refresh token reused after the grace")
	}
	if in := introspect(t, f.base, f.clientID, f.secret, got[0].AccessToken); in["active"] != false {
		t.Fatalf("after a reuse past the grace, the family: %v", in)
	}
}

// TestBackchannelLogoutsAcrossInstances: two gatehouse serve on one
// database (one base URL, as behind a load balancer), administrators each
// signed in to an application through one instance and the code redeemed
// on the other; the IdP then deprovisions them over SCIM (PATCH
// active=false, PUT active=false, DELETE), the instances in turn. The
// application must receive exactly one valid logout token for each of
// them, naming them and their session: none lost, none sent twice (two
// instances claiming one logout), none for anybody else. The delay is a
// figure of scimload logout (BENCHMARKS.md), not asserted here.
func TestBackchannelLogoutsAcrossInstances(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		f := newOPFixture(t, dsn, s)
		ctx := context.Background()
		addr := freeAddr(t)
		second := startServe(t, addr, f.env, "--addr", addr, "--base-url", f.base, "--scim-rate-limit", "-1")
		bases := []string{f.base, second.base}
		if r := gatehouse(t, f.env, "scim", "enable", "--org", "acme"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		r := gatehouse(t, f.env, "scim", "token", "create", "--org", "acme")
		if r.code != 0 {
			t.Fatal(r.stderr)
		}
		scimToken := strings.TrimSpace(r.stdout)

		var mu sync.Mutex
		got := map[string][]string{} // sub → logout tokens
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			raw := r.PostForm.Get("logout_token")
			var c struct {
				Sub string `json:"sub"`
			}
			if parts := strings.Split(raw, "."); len(parts) == 3 {
				payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
				json.Unmarshal(payload, &c)
			}
			mu.Lock()
			got[c.Sub] = append(got[c.Sub], raw)
			mu.Unlock()
		}))
		t.Cleanup(rcv.Close)
		r = gatehouse(t, f.env, "oidc", "client", "create", "--name", "Fleet", "--redirect-uri", f.redirect,
			"--backchannel-logout-uri", rcv.URL+"/backchannel", "--org", "acme", "--first-party")
		fleet := strings.Fields(r.stdout)
		if r.code != 0 || len(fleet) != 2 {
			t.Fatalf("client create: %+v", r)
		}
		provider, err := gooidc.NewProvider(ctx, f.base)
		if err != nil {
			t.Fatal(err)
		}
		verifier := provider.Verifier(&gooidc.Config{ClientID: fleet[0]})

		const n = 9
		sids := map[string]string{} // administrator id → sid
		var ids, names []string
		sys := store.WithActor(ctx, store.System)
		for i := range n {
			name := fmt.Sprintf("fleet.%d", i)
			a := activeAdministrator(t, s, f.org.ID, name, store.RoleAdministrator)
			if _, err := s.UpdateAdministrator(sys, f.org.ID, a.ID, store.KeepSuper, func(a *store.Administrator) error {
				a.SCIMManaged = true
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			on, other := bases[i%2], bases[(i+1)%2]
			conf := oauth2.Config{ClientID: fleet[0], ClientSecret: fleet[1], RedirectURL: f.redirect, Scopes: []string{gooidc.ScopeOpenID},
				Endpoint: oauth2.Endpoint{AuthURL: on + "/authorize", TokenURL: other + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
			q := newOPBrowser(t).authorize(conf.AuthCodeURL("state-"+name), on, name)
			tok, err := conf.Exchange(ctx, q.Get("code"))
			if err != nil {
				t.Fatalf("%s: code exchange on the other instance: %v", name, err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				SID string `json:"sid"`
			}
			idt.Claims(&c)
			sids[a.ID] = c.SID
			ids, names = append(ids, a.ID), append(names, name)
		}

		for i, id := range ids {
			var method, body string
			switch i % 3 {
			case 0:
				method, body = "PATCH", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`
			case 1:
				method, body = "PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+names[i]+`","active":false}`
			case 2:
				method = "DELETE"
			}
			req, _ := http.NewRequest(method, bases[i%2]+"/scim/v2/Users/"+id, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+scimToken)
			req.Header.Set("Content-Type", "application/scim+json")
			if res, out := do(t, req); res.StatusCode/100 != 2 {
				t.Fatalf("SCIM %s of %s: %d %s", method, names[i], res.StatusCode, out)
			}
		}

		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			received := len(got)
			mu.Unlock()
			if received >= n || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second) // a logout sent twice arrives at once, from the other instance
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			switch tokens := got[id]; len(tokens) {
			case 0:
				t.Errorf("no back-channel logout for %s within 30 s", id)
			case 1:
				checkLogoutToken(t, ctx, provider, fleet[0], tokens[0], id, sids[id])
			default:
				t.Errorf("%d back-channel logouts for %s", len(tokens), id)
			}
			delete(got, id)
		}
		for sub, tokens := range got {
			t.Errorf("%d back-channel logouts for %q, who was not deprovisioned", len(tokens), sub)
		}
	})
}
