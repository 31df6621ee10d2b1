package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"gatehouse/sso/saml"
	"gatehouse/sso/saml/samltest"
	"gatehouse/store"
)

// A real relying party: oauth2-proxy, the reverse proxy many products put
// in front of an application, with gatehouse serve as its OpenID
// Provider. .ci/deps builds it from the Go module proxy into
// ~/.cache/gatehouse-oauth2-proxy/<version>/ (GATEHOUSE_OAUTH2_PROXY
// names another binary).

const oauth2ProxyVersion = "v7.15.6"

// oauth2ProxyBinary is the built oauth2-proxy; the test skips without
// it, and fails under CI=true.
func oauth2ProxyBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("GATEHOUSE_OAUTH2_PROXY")
	if bin == "" {
		cache, _ := os.UserCacheDir()
		bin = filepath.Join(cache, "gatehouse-oauth2-proxy", oauth2ProxyVersion, "oauth2-proxy")
	}
	if _, err := os.Stat(bin); err != nil {
		const build = "GOFLAGS=-mod=mod GOBIN=~/.cache/gatehouse-oauth2-proxy/" + oauth2ProxyVersion +
			" go install github.com/oauth2-proxy/oauth2-proxy/v7@" + oauth2ProxyVersion
		if os.Getenv("CI") == "true" {
			t.Fatalf("oauth2-proxy is required in CI (.ci/deps builds it: %s): %v", build, err)
		}
		t.Skipf("no oauth2-proxy at %s (%s); CI=true makes this a failure", bin, build)
	}
	return bin
}

// oauth2Proxy is a running oauth2-proxy in front of upstream.
type oauth2Proxy struct {
	base string
	log  *syncBuffer
}

// cookieRefresh is oauth2-proxy's --cookie-refresh: how old its session
// may grow before it refreshes the tokens at gatehouse.
const cookieRefresh = 2 * time.Second

// startOAuth2Proxy runs oauth2-proxy at addr with gatehouse (issuer) as its
// OIDC provider, as the client clientID/secret, in front of upstream.
func startOAuth2Proxy(t *testing.T, bin, addr, issuer, clientID, secret, upstream string) *oauth2Proxy {
	t.Helper()
	p := &oauth2Proxy{base: "http://" + addr, log: &syncBuffer{}}
	cmd := exec.Command(bin,
		"--http-address="+addr,
		"--provider=oidc",
		"--oidc-issuer-url="+issuer,
		"--client-id="+clientID,
		"--client-secret="+secret,
		"--redirect-url="+p.base+"/oauth2/callback",
		"--code-challenge-method=S256",
		"--scope=openid profile email offline_access",
		"--upstream="+upstream,
		"--email-domain=*",
		"--cookie-secret="+strings.Repeat("0123456789abcdef", 2),
		"--cookie-secure=false",
		"--cookie-refresh="+cookieRefresh.String(),
		"--skip-provider-button=true", // a signed-out browser goes straight to gatehouse
		"--pass-user-headers=true",
		"--pass-authorization-header=true", // the ID token, so the application can read amr
		"--set-xauthrequest=true",
	)
	cmd.Env = []string{"HOME=" + t.TempDir()} // nothing from the real environment (no OAUTH2_PROXY_*)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	runUntilReady(t, "oauth2-proxy", cmd, p.base+"/ping", p.log.String)
	return p
}

// application is the upstream behind oauth2-proxy: it answers with the
// identity headers oauth2-proxy passed, and counts its requests.
type application struct {
	*httptest.Server
	hits atomic.Int64
}

// identity is what the application learnt of a request's user.
type identity struct {
	User, Email, PreferredUsername, IDToken string
}

func startApplication(t *testing.T) *application {
	app := &application{}
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(identity{User: r.Header.Get("X-Forwarded-User"), Email: r.Header.Get("X-Forwarded-Email"),
			PreferredUsername: r.Header.Get("X-Forwarded-Preferred-Username"),
			IDToken:           strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")})
	}))
	t.Cleanup(app.Close)
	return app
}

// rpBrowser is a person's browser without JavaScript: one cookie jar for
// oauth2-proxy, gatehouse and the IdP (all on 127.0.0.1), redirects
// followed by hand so that each hop can be checked.
type rpBrowser struct {
	t      *testing.T
	client *http.Client
	hops   []string // every URL requested since the last reset
}

func newRPBrowser(t *testing.T) *rpBrowser {
	jar, _ := cookiejar.New(nil)
	return &rpBrowser{t: t, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// visit sends req and follows the redirects until a page answers; it
// returns that page's response and body.
func (b *rpBrowser) visit(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	for i := 0; i < 20; i++ {
		b.hops = append(b.hops, req.Method+" "+req.URL.String())
		res, err := b.client.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if res.StatusCode < 300 || res.StatusCode > 399 {
			return res, string(body)
		}
		loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
		if err != nil {
			b.t.Fatalf("%s: redirect to %q: %v", req.URL, res.Header.Get("Location"), err)
		}
		req, _ = http.NewRequest(http.MethodGet, loc.String(), nil)
	}
	b.t.Fatalf("more than 20 redirects: %v", b.hops)
	return nil, ""
}

func (b *rpBrowser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.visit(req)
}

func (b *rpBrowser) post(u string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.visit(req)
}

// visited reports whether a URL starting with prefix was requested since
// the last reset.
func (b *rpBrowser) visited(prefix string) bool {
	for _, h := range b.hops {
		if strings.HasPrefix(strings.SplitN(h, " ", 2)[1], prefix) {
			return true
		}
	}
	return false
}

// signIn opens the application through oauth2-proxy and signs in at
// gatehouse as a person does: "Alice@acme" on the sign-in page, then
// whatever gatehouse asks next — its password form, or the
// organization's IdP (SimpleSAMLphp, where idpPassword is used). It
// returns the last page reached.
func (b *rpBrowser) signIn(proxy, gatehouseBase, user, idpPassword string) (*http.Response, string) {
	b.t.Helper()
	b.hops = nil
	res, body := b.get(proxy + "/")
	if !b.visited(gatehouseBase+"/authorize?") || res.Request.URL.Path != "/login" || !strings.HasPrefix(res.Request.URL.String(), gatehouseBase) {
		b.t.Fatalf("oauth2-proxy did not send a signed-out browser to gatehouse's sign-in: %d at %s via %v\n%s",
			res.StatusCode, res.Request.URL, b.hops, body)
	}
	next := res.Request.URL.Query().Get("next")
	res, body = b.post(gatehouseBase+"/login", url.Values{"username": {user + "@acme"}, "next": {next}})
	switch {
	case res.StatusCode == 200 && strings.HasPrefix(res.Request.URL.String(), gatehouseBase) && strings.Contains(body, `name="password"`):
		res, body = b.post(gatehouseBase+"/login/password", url.Values{"organization": {"acme"}, "org_fixed": {"1"},
			"username": {user}, "password": {consolePassword}, "next": {next}})
	case res.StatusCode == 200 && !strings.HasPrefix(res.Request.URL.String(), gatehouseBase):
		// At the IdP: its own login form, then its self-posting form to
		// gatehouse's ACS, posted from this browser (the binding cookie).
		idp := &http.Client{Jar: b.client.Jar, Timeout: 30 * time.Second}
		form, err := samltest.Login(idp, res.Request.URL.String(), user, idpPassword)
		if err != nil {
			b.t.Fatalf("at the IdP: %v", err)
		}
		if !strings.HasPrefix(form.Action, gatehouseBase+"/sso/saml/") {
			b.t.Fatalf("the IdP posts to %s, not gatehouse's ACS", form.Action)
		}
		res, body = b.post(form.Action, form.Values)
	default:
		b.t.Fatalf("gatehouse's answer to %s@acme: %d at %s\n%s", user, res.StatusCode, res.Request.URL, body)
	}
	return res, body
}

// forwardAuth asks oauth2-proxy's /oauth2/auth (what nginx's auth_request
// calls) about this browser, wants status, and returns the headers.
func (b *rpBrowser) forwardAuth(proxy string, status int) http.Header {
	b.t.Helper()
	res, err := b.client.Get(proxy + "/oauth2/auth")
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != status {
		b.t.Fatalf("/oauth2/auth: %d, want %d", res.StatusCode, status)
	}
	return res.Header
}

// reached checks that the last visit ended at the application, through
// oauth2-proxy's callback, and returns what the application learnt.
func (b *rpBrowser) reached(res *http.Response, body, proxy string) identity {
	b.t.Helper()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Request.URL.String(), proxy+"/") || !b.visited(proxy+"/oauth2/callback?") {
		b.t.Fatalf("not at the application through oauth2-proxy: %d at %s via %v\n%s", res.StatusCode, res.Request.URL, b.hops, body)
	}
	var id identity
	if err := json.Unmarshal([]byte(body), &id); err != nil {
		b.t.Fatalf("the application's answer: %v\n%s", err, body)
	}
	return id
}

// idTokenClaims are the ID token's claims the test checks.
type idTokenClaims struct {
	Sub               string   `json:"sub"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	AMR               []string `json:"amr"`
	OrgSlug           string   `json:"org_slug"`
	Role              string   `json:"role"`
}

// verifyIDToken verifies the ID token the application got (signature by
// gatehouse's published key, issuer, audience) and returns its claims.
func verifyIDToken(t *testing.T, issuer, clientID, raw string) idTokenClaims {
	t.Helper()
	ctx := context.Background()
	p, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Verifier(&gooidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("the ID token oauth2-proxy passed: %v", err)
	}
	var c idTokenClaims
	if err := tok.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOAuth2Proxy: oauth2-proxy (built from the module proxy) signs an
// administrator in with gatehouse serve as its OpenID Provider and passes
// who they are to the application behind it (and to its forward-auth
// endpoint): first with a password, then — the bridge upstream and
// downstream in one flow — through the organization's SAML IdP
// (SimpleSAMLphp). The IdP then deactivates them over SCIM, and
// oauth2-proxy refuses both browsers at its next refresh: the refresh
// token is revoked at once, oauth2-proxy drops its session on
// invalid_grant and sends the browser to sign in again (forward auth:
// 401), where gatehouse's session is gone too. No back-channel logout is
// involved (oauth2-proxy does not implement it). Seen failing with
// gatehouse's three guards removed (deprovision's revocations, the
// status checks of the token and of the claims): the application was
// reached after the deactivation.
func TestOAuth2Proxy(t *testing.T) {
	bin := oauth2ProxyBinary(t)
	forEachDatabase(t, func(t *testing.T, dsn string, _ *store.SQL) {
		idp := startConsoleIdP(t) // one per database: it knows one service provider
		f := newServeFixtureOn(t, dsn, nil)
		// Alice is invited and activates her account through the emailed
		// link: gatehouse then knows her address (email_verified), which
		// oauth2-proxy requires by default.
		alice := inviteActive(t, f, "Alice", "Administrator")
		app := startApplication(t)
		proxyAddr := freeAddr(t)
		r := gatehouse(t, f.env, "oidc", "client", "create", "--name", "oauth2-proxy", "--redirect-uri", "http://"+proxyAddr+"/oauth2/callback",
			"--org", "acme", "--first-party")
		client := strings.Fields(r.stdout)
		if r.code != 0 || len(client) != 2 {
			t.Fatalf("oidc client create: %+v", r)
		}
		proxy := startOAuth2Proxy(t, bin, proxyAddr, f.srv.base, client[0], client[1], app.URL)

		// 1. Password.
		byPassword := newRPBrowser(t)
		res, body := byPassword.signIn(proxy.base, f.srv.base, "Alice", "")
		id := byPassword.reached(res, body, proxy.base)
		if id.User != alice.ID || id.Email != "alice@example.com" || id.PreferredUsername != "Alice" {
			t.Fatalf("the application learnt %+v, want Alice (%s, alice@example.com)", id, alice.ID)
		}
		c := verifyIDToken(t, f.srv.base, client[0], id.IDToken)
		if c.Sub != alice.ID || c.PreferredUsername != "Alice" || !c.EmailVerified || strings.Join(c.AMR, " ") != "pwd" ||
			c.OrgSlug != "acme" || c.Role != string(store.RoleAdministrator) {
			t.Fatalf("ID token after a password sign-in: %+v", c)
		}
		// oauth2-proxy's forward-auth answer (nginx auth_request) says the same.
		if h := byPassword.forwardAuth(proxy.base, http.StatusAccepted); h.Get("X-Auth-Request-User") != alice.ID ||
			h.Get("X-Auth-Request-Email") != "alice@example.com" || h.Get("X-Auth-Request-Preferred-Username") != "Alice" {
			t.Fatalf("/oauth2/auth: %v", h)
		}

		// 2. The organization's SAML IdP, in a new browser.
		r = gatehouse(t, f.env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "SimpleSAMLphp",
			"--metadata-url", idp.metadataURL, "--username-from", "nameid", "--base-url", f.srv.base)
		if r.code != 0 {
			t.Fatalf("sso create: %s", r.stderr)
		}
		connID := strings.Fields(r.stdout)[0]
		idp.knowSP(t, f.srv.base+saml.SPMetadataPath(connID))
		bySAML := newRPBrowser(t)
		res, body = bySAML.signIn(proxy.base, f.srv.base, "Alice", "password")
		if !bySAML.visited(idp.base + "/") {
			t.Fatalf("the sign-in did not go through the IdP: %v", bySAML.hops)
		}
		id = bySAML.reached(res, body, proxy.base)
		lastSignIn := time.Now()
		if id.User != alice.ID || id.Email != "alice@example.com" || id.PreferredUsername != "Alice" {
			t.Fatalf("after the SAML sign-in the application learnt %+v", id)
		}
		if c := verifyIDToken(t, f.srv.base, client[0], id.IDToken); c.Sub != alice.ID || strings.Join(c.AMR, " ") != "fed saml" {
			t.Fatalf("ID token after a SAML sign-in: %+v", c)
		}

		// 3. The IdP deprovisions Alice over SCIM, as Okta does: find her
		// by userName, PATCH active=false.
		if r := gatehouse(t, f.env, "scim", "enable", "--org", "acme"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		r = gatehouse(t, f.env, "scim", "token", "create", "--org", "acme")
		if r.code != 0 {
			t.Fatal(r.stderr)
		}
		scimToken := strings.TrimSpace(r.stdout)
		scim := func(method, path, body string) (*http.Response, string) {
			req, _ := http.NewRequest(method, f.srv.base+"/scim/v2"+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+scimToken)
			req.Header.Set("Content-Type", "application/scim+json")
			return do(t, req)
		}
		res, body = scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "Alice"`), "")
		var list struct{ Resources []struct{ ID string } }
		if json.Unmarshal([]byte(body), &list); res.StatusCode != 200 || len(list.Resources) != 1 || list.Resources[0].ID != alice.ID {
			t.Fatalf("SCIM lookup of Alice: %d %s", res.StatusCode, body)
		}
		hits := app.hits.Load()
		res, body = scim("PATCH", "/Users/"+alice.ID,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
		if res.StatusCode != 200 || !strings.Contains(body, `"active":false`) {
			t.Fatalf("SCIM deactivation: %d %s", res.StatusCode, body)
		}
		// Once oauth2-proxy's session is older than --cookie-refresh, it
		// refreshes, gatehouse answers invalid_grant, and oauth2-proxy
		// drops the session and sends the browser to sign in again. Until
		// then it trusts its cookie: --cookie-refresh is the window.
		time.Sleep(time.Until(lastSignIn.Add(cookieRefresh + time.Second)))
		// The password browser asks the forward-auth endpoint (401), the
		// SAML one the application (sent to sign in).
		byPassword.forwardAuth(proxy.base, http.StatusUnauthorized)
		bySAML.hops = nil
		res, body = bySAML.get(proxy.base + "/")
		if !bySAML.visited(f.srv.base+"/authorize?") || res.Request.URL.Path != "/login" || !strings.HasPrefix(res.Request.URL.String(), f.srv.base) {
			t.Fatalf("the SAML browser after the deactivation: %d at %s via %v\n%s", res.StatusCode, res.Request.URL, bySAML.hops, body)
		}
		if n := app.hits.Load(); n != hits {
			t.Fatalf("the application was reached %d times after the deactivation", n-hits)
		}
		if strings.Count(proxy.log.String(), `Fatal refresh error detected`) != 2 || !strings.Contains(proxy.log.String(), `"invalid_grant"`) {
			t.Fatalf("oauth2-proxy's log does not show the refused refresh:\n%s", tail(proxy.log.String(), 4000))
		}
		// Signing in again through the IdP (which still knows Alice) ends
		// at gatehouse's refusal, not at the application.
		res, body = bySAML.signIn(proxy.base, f.srv.base, "Alice", "password")
		if res.StatusCode != http.StatusForbidden || !strings.HasPrefix(res.Request.URL.String(), f.srv.base+"/sso/saml/") ||
			bySAML.visited(proxy.base+"/oauth2/callback") || app.hits.Load() != hits {
			t.Fatalf("a deactivated administrator signed in again: %d at %s via %v\n%s", res.StatusCode, res.Request.URL, bySAML.hops, body)
		}
	})
}
