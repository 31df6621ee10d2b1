package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"gatehouse/admin"
	"gatehouse/sso/protocol"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

const oidcTestBase = "https://gatehouse.example"

// oidcEnv is one organization with one OIDC connection to its own test
// OP, on a real SQLite store.
type oidcEnv struct {
	t       testing.TB
	st      *store.SQL
	sealer  *admin.Sealer
	org     store.Org
	op      *oidcTestOP
	conn    store.SSOConnection
	c       protocol.Connector
	clock   time.Duration // added to time.Now for the relying party
	browser []byte
}

func oidcTestSealer(t testing.TB) *admin.Sealer {
	key := make([]byte, admin.SecretKeySize)
	for i := range key {
		key[i] = byte(i)
	}
	s, err := admin.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newOIDCEnv makes the environment; configure may change the OP and the
// connection before the connector is made (discovery happens then).
func newOIDCEnv(t testing.TB, configure func(op *oidcTestOP, conn *store.SSOConnection)) *oidcEnv {
	t.Helper()
	st := storetest.SQLite(t)
	return newOIDCEnvOn(t, st, oidcTestSealer(t), "org-"+strings.ToLower(uuid.NewString()[:8]), configure)
}

func newOIDCEnvOn(t testing.TB, st *store.SQL, sealer *admin.Sealer, slug string, configure func(op *oidcTestOP, conn *store.SSOConnection)) *oidcEnv {
	t.Helper()
	ctx := storetest.Context(context.Background())
	org, _, err := st.CreateOrg(ctx, store.NewOrg{
		Org: store.Org{Slug: slug, Name: "Org " + slug},
		Owner: store.Administrator{UserName: "owner", Email: "owner@" + slug + ".example", GivenName: "Olive", FamilyName: "Owner",
			Role: store.RoleSuperAdministrator, Status: store.StatusPending},
		Invitation: store.Invitation{Hash: []byte("hash-" + slug), ExpiresAt: time.Now().Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	connID := uuid.NewString()
	op := newOIDCTestOP(t, "gatehouse-"+slug, "s3cret/"+slug+"+:%", oidcTestBase+CallbackPath(connID))
	conn := store.SSOConnection{ID: connID, OrgID: org.ID, Kind: store.SSOOIDC, Name: "IdP", Enabled: true,
		UsernameFrom: "claim:preferred_username"}
	if configure != nil {
		configure(op, &conn)
	}
	if conn.Config == nil {
		cfg, _ := json.Marshal(Config{Issuer: op.issuer, ClientID: op.clientID})
		conn.Config = store.RawJSON(cfg)
	}
	conn.Secret = sealer.Seal(op.clientSecret, protocol.SealContext(connID))
	if conn, err = st.CreateSSOConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	e := &oidcEnv{t: t, st: st, sealer: sealer, org: org, op: op, conn: conn, browser: []byte("browser-" + slug)}
	e.c, err = New(ctx, conn, st, sealer, oidcTestBase, &http.Client{Timeout: 10 * time.Second}, e.now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func (e *oidcEnv) now() time.Time { return time.Now().Add(e.clock) }

// start begins a sign-in in browser and returns the authorization URL.
func (e *oidcEnv) start(browser []byte, req protocol.StartRequest) string {
	e.t.Helper()
	req.Browser = browser
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", oidcTestBase+"/sso/start", nil)
	if err := e.c.Start(context.Background(), w, r, req); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	if w.Code != http.StatusFound {
		e.t.Fatalf("Start answered %d, want 302", w.Code)
	}
	return w.Header().Get("Location")
}

// authorize plays the browser at the OP and returns the callback URL it
// is sent back to.
func (e *oidcEnv) authorize(authURL string) *url.URL {
	e.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), oidcTestBase+CallbackPath(e.conn.ID)+"?") {
		e.t.Fatalf("the OP answered %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc
}

func (e *oidcEnv) finish(callback *url.URL, browser []byte) (protocol.Identity, store.SSORequest, error) {
	r := httptest.NewRequest("GET", callback.String(), nil)
	return e.c.Finish(context.Background(), r, browser)
}

// callback is a fresh sign-in's callback URL in e's browser.
func (e *oidcEnv) callback() *url.URL {
	e.t.Helper()
	return e.authorize(e.start(e.browser, protocol.StartRequest{RedirectTo: "/console"}))
}

// signIn runs a whole sign-in and must succeed.
func (e *oidcEnv) signIn() protocol.Identity {
	e.t.Helper()
	id, _, err := e.finish(e.callback(), e.browser)
	if err != nil {
		e.t.Fatalf("control: the untampered sign-in failed: %v", err)
	}
	return id
}

// refused asserts err is a *protocol.Error whose text (reason and cause) contains
// want.
func refused(t *testing.T, err error, want string) {
	t.Helper()
	var se *protocol.Error
	if !errors.As(err, &se) || !errors.Is(err, protocol.ErrRefused) {
		t.Fatalf("want a refusal containing %q, got %v", want, err)
	}
	if !strings.Contains(se.Error(), want) {
		t.Fatalf("refusal %q does not contain %q", se.Error(), want)
	}
}

func withParam(u *url.URL, name, value string) *url.URL {
	c := *u
	q := c.Query()
	if value == "" {
		q.Del(name)
	} else {
		q.Set(name, value)
	}
	c.RawQuery = q.Encode()
	return &c
}

func TestOIDCSignIn(t *testing.T) {
	e := newOIDCEnv(t, nil)
	ctx := storetest.Context(context.Background())
	authURL := e.start(e.browser, protocol.StartRequest{RedirectTo: "/console/admins", LoginHint: "Alice", Test: true})

	a, err := url.Parse(authURL)
	if err != nil || !strings.HasPrefix(authURL, e.op.issuer+"/authorize?") {
		t.Fatalf("authorization URL %q", authURL)
	}
	q := a.Query()
	for k, want := range map[string]string{"response_type": "code", "client_id": e.op.clientID, "scope": "openid email profile",
		"redirect_uri": oidcTestBase + "/sso/oidc/" + e.conn.ID + "/callback", "code_challenge_method": "S256", "login_hint": "Alice"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s = %q, want %q", k, q.Get(k), want)
		}
	}
	state, nonce := q.Get("state"), q.Get("nonce")
	if len(state) < 43 || len(nonce) < 43 || q.Get("code_challenge") == "" {
		t.Fatalf("state %q, nonce %q, challenge %q: want 256-bit random values", state, nonce, q.Get("code_challenge"))
	}
	// The request is stored, bound, with the verifier sealed.
	pending, err := e.st.PendingSSORequest(ctx, state, e.conn.ID, e.browser, time.Now())
	if err != nil {
		t.Fatalf("the request is not stored: %v", err)
	}
	if pending.Nonce != nonce || pending.RedirectTo != "/console/admins" || !pending.Test || pending.OrgID != e.org.ID {
		t.Fatalf("stored request %+v", pending)
	}
	if !strings.HasPrefix(pending.Verifier, "v1.") {
		t.Fatalf("the verifier is not sealed: %q", pending.Verifier)
	}
	if exp := time.Until(pending.ExpiresAt); exp < protocol.RequestTTL-time.Minute || exp > protocol.RequestTTL {
		t.Fatalf("expires in %s, want %s", exp, protocol.RequestTTL)
	}
	verifier, err := e.sealer.Open(pending.Verifier, "pkce:"+state)
	if err != nil || len(verifier) < 43 {
		t.Fatalf("verifier does not open with pkce:<state>: %v", err)
	}

	id, req, err := e.finish(e.authorize(authURL), e.browser)
	if err != nil {
		t.Fatal(err)
	}
	if req.ID != state || req.RedirectTo != "/console/admins" || !req.Test {
		t.Fatalf("request %+v", req)
	}
	if id.Username != "Alice" || id.Subject != "00u1alice" || id.Issuer != e.op.issuer || id.Certificate != "" {
		t.Fatalf("identity %+v", id)
	}
	if id.IssuedAt.IsZero() || id.NotOnOrAfter.Sub(id.IssuedAt) != 5*time.Minute || !id.NotBefore.IsZero() {
		t.Fatalf("times %v %v %v", id.IssuedAt, id.NotBefore, id.NotOnOrAfter)
	}
	// Merged claims: the ID token wins (name), userinfo adds the rest.
	for k, want := range map[string]string{"name": "Alice Liddell", "preferred_username": "Alice", "email": "alice@example.test",
		"email_verified": "true", "sub": "00u1alice", "aud": e.op.clientID, "iss": e.op.issuer} {
		if got := id.Attributes[k]; len(got) != 1 || got[0] != want {
			t.Errorf("attribute %s = %q, want %q", k, got, want)
		}
	}
	if _, tokenCalls, pkce := e.op.counts(); tokenCalls != 1 || pkce != 0 {
		t.Fatalf("token calls %d, PKCE failures %d", tokenCalls, pkce)
	}
	// client_secret_post when that is all the provider takes.
	e2 := newOIDCEnv(t, func(op *oidcTestOP, _ *store.SSOConnection) { op.AuthMethods = []string{"client_secret_post"} })
	if id := e2.signIn(); id.Username != "Alice" {
		t.Fatalf("client_secret_post: %+v", id)
	}
	// Without a userinfo endpoint the ID token's claims are all there is.
	e3 := newOIDCEnv(t, func(op *oidcTestOP, _ *store.SSOConnection) {
		op.NoUserinfo = true
		op.IDClaims["preferred_username"] = "Alice"
	})
	if id := e3.signIn(); id.Username != "Alice" || id.Attributes["email"] != nil {
		t.Fatalf("no userinfo: %+v", id)
	}
}

func TestOIDCState(t *testing.T) {
	e := newOIDCEnv(t, nil)
	other := newOIDCEnvOn(t, e.st, e.sealer, "other", nil) // another organization's connection on the same store
	e.signIn()

	cases := []struct {
		name   string
		attack func() (*url.URL, []byte)
	}{
		{"missing", func() (*url.URL, []byte) { return withParam(e.callback(), "state", ""), e.browser }},
		{"mismatched", func() (*url.URL, []byte) { return withParam(e.callback(), "state", oidcRandomText()), e.browser }},
		{"another browser", func() (*url.URL, []byte) { return e.callback(), []byte("attacker-browser") }},
		{"another connection", func() (*url.URL, []byte) {
			// A state of the other connection, in the same browser, at this connection's callback.
			cb := other.authorize(other.start(e.browser, protocol.StartRequest{}))
			return withParam(e.callback(), "state", cb.Query().Get("state")), e.browser
		}},
		{"expired", func() (*url.URL, []byte) {
			cb := e.callback()
			e.clock = protocol.RequestTTL + time.Second
			return cb, e.browser
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t, e.clock = t, 0
			defer func() { e.clock = 0 }()
			e.signIn()
			cb, browser := tc.attack()
			_, calls, _ := e.op.counts()
			_, _, err := e.finish(cb, browser)
			if tc.name == "missing" {
				refused(t, err, "no state")
			} else {
				refused(t, err, "matches no sign-in in progress")
			}
			if _, after, _ := e.op.counts(); after != calls {
				t.Fatal("the token endpoint was called for a callback with a bad state")
			}
		})
	}
	t.Run("replayed", func(t *testing.T) {
		e.t = t
		cb := e.callback()
		if _, _, err := e.finish(cb, e.browser); err != nil {
			t.Fatalf("control: %v", err)
		}
		_, calls, _ := e.op.counts()
		_, _, err := e.finish(cb, e.browser)
		refused(t, err, "matches no sign-in in progress")
		if _, after, _ := e.op.counts(); after != calls {
			t.Fatal("a replayed callback reached the token endpoint")
		}
	})
	t.Run("repeated parameter", func(t *testing.T) {
		e.t = t
		e.signIn()
		cb := e.callback()
		cb.RawQuery += "&state=" + oidcRandomText()
		_, _, err := e.finish(cb, e.browser)
		refused(t, err, `repeats the "state" parameter`)
	})
}

// TestOIDCCodeReplay: the same callback twice; the second is refused
// before the OP is asked again, so the OP sees exactly one exchange.
func TestOIDCCodeReplay(t *testing.T) {
	e := newOIDCEnv(t, nil)
	cb := e.callback()
	if _, _, err := e.finish(cb, e.browser); err != nil {
		t.Fatalf("control: %v", err)
	}
	_, _, err := e.finish(cb, e.browser)
	refused(t, err, "matches no sign-in in progress")
	if _, calls, _ := e.op.counts(); calls != 1 {
		t.Fatalf("the token endpoint was called %d times, want 1", calls)
	}
	// The same code under a fresh state: the OP refuses the used code, and so do we.
	cb2 := withParam(e.callback(), "code", cb.Query().Get("code"))
	_, _, err = e.finish(cb2, e.browser)
	refused(t, err, "refused the authorization code")
}

// TestOIDCCodeInjection: a code issued for the attacker's own sign-in
// (with the attacker's PKCE challenge) injected into the victim's
// callback. The victim's verifier does not match, the OP refuses, and so
// do we.
func TestOIDCCodeInjection(t *testing.T) {
	e := newOIDCEnv(t, nil)
	e.signIn()
	attacker := []byte("attacker-browser")
	stolen := e.authorize(e.start(attacker, protocol.StartRequest{})).Query().Get("code")
	victim := e.callback()
	_, _, err := e.finish(withParam(victim, "code", stolen), e.browser)
	refused(t, err, "PKCE verification failed")
	if _, _, pkce := e.op.counts(); pkce != 1 {
		t.Fatalf("PKCE failures at the OP: %d, want 1", pkce)
	}
	// The victim's own code still works: the refusal was the injection's.
	e.signIn()
}

func TestOIDCNonceMismatch(t *testing.T) {
	e := newOIDCEnv(t, nil)
	e.signIn()
	e.op.EditIDToken = func(c map[string]any) { c["nonce"] = "n-" + oidcRandomText() }
	_, _, err := e.finish(e.callback(), e.browser)
	refused(t, err, "nonce is not the one sent")
	e.op.EditIDToken = func(c map[string]any) { delete(c, "nonce") }
	_, _, err = e.finish(e.callback(), e.browser)
	refused(t, err, "has no nonce")
}

func TestOIDCIDTokenAttacks(t *testing.T) {
	now := func() int64 { return time.Now().Unix() }
	cases := []struct {
		name  string
		alg   string
		edit  func(c map[string]any)
		want  string
		proof func(c map[string]any) // a harmless edit of the same claim that must pass, when there is one
	}{
		// Refused for the algorithm itself, before any key is looked up.
		{name: "alg none", alg: "none", want: "unexpected signature algorithm"},
		{name: "HS256 keyed with the client secret", alg: "HS256", want: "unexpected signature algorithm"},
		{name: "signed by an unknown key", alg: "foreign", want: "failed verification"},
		{name: "wrong aud", edit: func(c map[string]any) { c["aud"] = "another-client" }, want: "failed verification"},
		{name: "several audiences, foreign azp", edit: func(c map[string]any) {
			c["aud"] = []string{c["aud"].(string), "another-client"}
			c["azp"] = "another-client"
		}, want: "azp", proof: func(c map[string]any) {
			c["azp"] = c["aud"]
			c["aud"] = []string{c["aud"].(string), "another-client"}
		}},
		{name: "several audiences, no azp", edit: func(c map[string]any) { c["aud"] = []string{"another-client", c["aud"].(string)} },
			want: "several audiences"},
		{name: "one audience, foreign azp", edit: func(c map[string]any) { c["azp"] = "another-client" }, want: "azp"},
		{name: "issued by another issuer", edit: func(c map[string]any) { c["iss"] = "https://evil.example" }, want: "failed verification"},
		{name: "expired", edit: func(c map[string]any) { c["exp"] = now() - 120 }, want: "expired",
			proof: func(c map[string]any) { c["exp"] = now() - 30 }}, // within the 60 s skew
		{name: "no exp", edit: func(c map[string]any) { delete(c, "exp") }, want: "expired"},
		{name: "future iat", edit: func(c map[string]any) { c["iat"] = now() + 300 }, want: "issued in the future",
			proof: func(c map[string]any) { c["iat"] = now() + 30 }},
		{name: "no iat", edit: func(c map[string]any) { delete(c, "iat") }, want: "no iat"},
		// go-oidc alone allows 5 minutes; the connection's skew is 60 s.
		{name: "future nbf", edit: func(c map[string]any) { c["nbf"] = now() + 120 }, want: "not valid before",
			proof: func(c map[string]any) { c["nbf"] = now() + 30 }},
		{name: "no sub", edit: func(c map[string]any) { delete(c, "sub") }, want: "no sub"},
	}
	e := newOIDCEnv(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.op.Alg, e.op.EditIDToken = "RS256", tc.proof
			e.signIn()
			if tc.alg != "" {
				e.op.Alg = tc.alg
			}
			e.op.EditIDToken = tc.edit
			defer func() { e.op.Alg, e.op.EditIDToken = "RS256", nil }()
			_, _, err := e.finish(e.callback(), e.browser)
			refused(t, err, tc.want)
		})
	}
}

// TestOIDCIssuerMixUp: two organizations, each with its own OP (RFC 9207).
func TestOIDCIssuerMixUp(t *testing.T) {
	a := newOIDCEnv(t, nil)
	b := newOIDCEnvOn(t, a.st, a.sealer, "org-b", nil)
	a.signIn()
	b.signIn()

	t.Run("iss of org B's OP at org A's callback", func(t *testing.T) {
		a.t = t
		_, calls, _ := a.op.counts()
		_, _, err := a.finish(withParam(a.callback(), "iss", b.op.issuer), a.browser)
		refused(t, err, "is not this connection's issuer")
		if _, after, _ := a.op.counts(); after != calls {
			t.Fatal("the code was exchanged despite the mix-up")
		}
	})
	t.Run("org B's whole callback at org A's connection", func(t *testing.T) {
		a.t = t
		cb := b.authorize(b.start(a.browser, protocol.StartRequest{}))
		_, _, err := a.finish(cb, a.browser)
		refused(t, err, "matches no sign-in in progress")
	})
	t.Run("missing iss when advertised", func(t *testing.T) {
		a.t = t
		_, _, err := a.finish(withParam(a.callback(), "iss", ""), a.browser)
		refused(t, err, "has no iss")
	})
	t.Run("empty iss", func(t *testing.T) {
		a.t = t
		cb := a.callback()
		q := cb.Query()
		q.Set("iss", "")
		cb.RawQuery = q.Encode()
		_, _, err := a.finish(cb, a.browser)
		refused(t, err, "is not this connection's issuer")
	})
	t.Run("missing iss when not advertised", func(t *testing.T) {
		c := newOIDCEnv(t, func(op *oidcTestOP, _ *store.SSOConnection) { op.AdvertiseIss, op.SendIss = false, false })
		c.signIn()
		// But a wrong one is refused even then.
		_, _, err := c.finish(withParam(c.callback(), "iss", b.op.issuer), c.browser)
		refused(t, err, "is not this connection's issuer")
	})
}

func TestOIDCUserinfoSubMismatch(t *testing.T) {
	e := newOIDCEnv(t, nil)
	e.signIn()
	e.op.EditUserinfo = func(c map[string]any) { c["sub"] = "00u2mallory" }
	_, _, err := e.finish(e.callback(), e.browser)
	refused(t, err, "userinfo's sub")
}

func TestOIDCProviderError(t *testing.T) {
	e := newOIDCEnv(t, nil)
	e.signIn()
	e.op.AuthError = "access_denied"
	_, req, err := e.finish(e.callback(), e.browser)
	refused(t, err, "refused the sign-in: access_denied (the user said no)")
	if req.ID == "" {
		t.Fatal("the refused request is not returned")
	}
}

func TestOIDCUsername(t *testing.T) {
	email := func(op *oidcTestOP, c *store.SSOConnection) { c.UsernameFrom = "claim:email" }
	cases := []struct {
		name      string
		configure func(op *oidcTestOP, c *store.SSOConnection)
		edit      func(ui map[string]any)
		want      string // "" : accepted
		username  string
	}{
		{name: "email verified", configure: email, username: "alice@example.test"},
		{name: "email verified as the string true", configure: email, username: "alice@example.test",
			edit: func(ui map[string]any) { ui["email_verified"] = "true" }},
		{name: "email unverified", configure: email, edit: func(ui map[string]any) { ui["email_verified"] = false },
			want: "email_verified: true"},
		{name: "email without email_verified", configure: email, edit: func(ui map[string]any) { delete(ui, "email_verified") },
			want: "email_verified: true"},
		{name: "email from userinfo, verified only in the ID token", configure: func(op *oidcTestOP, c *store.SSOConnection) {
			email(op, c)
			op.IDClaims["email_verified"] = true
		}, edit: func(ui map[string]any) { ui["email"] = "mallory@example.test"; ui["email_verified"] = false }, want: "email_verified: true"},
		{name: "case kept", edit: func(ui map[string]any) { ui["preferred_username"] = "aLiCe" }, username: "aLiCe"},
		{name: "spaces kept", edit: func(ui map[string]any) { ui["preferred_username"] = " Alice " }, username: " Alice "},
		{name: "absent", edit: func(ui map[string]any) { delete(ui, "preferred_username") }, want: "in neither"},
		{name: "empty", edit: func(ui map[string]any) { ui["preferred_username"] = "" }, want: "is empty"},
		{name: "not a string", edit: func(ui map[string]any) { ui["preferred_username"] = []string{"Alice"} }, want: "not a string"},
		{name: "sub", configure: func(op *oidcTestOP, c *store.SSOConnection) { c.UsernameFrom = "claim:sub" }, username: "00u1alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newOIDCEnv(t, tc.configure)
			e.op.EditUserinfo = tc.edit
			id, _, err := e.finish(e.callback(), e.browser)
			if tc.want != "" {
				refused(t, err, tc.want)
				e.op.EditUserinfo = nil
				e.signIn() // control
				return
			}
			if err != nil || id.Username != tc.username {
				t.Fatalf("username %q, %v; want %q", id.Username, err, tc.username)
			}
		})
	}
}

func TestOIDCConfig(t *testing.T) {
	good := func(c *Config) {}
	cases := []struct {
		name string
		json string
		want string // error text; "" valid
		edit func(c *Config)
	}{
		{"minimal", `{"issuer":"https://idp.example","clientId":"gh"}`, "", good},
		{"loopback http", `{"issuer":"http://127.0.0.1:8080/realms/x","clientId":"gh"}`, "", good},
		{"localhost http", `{"issuer":"http://localhost:8080","clientId":"gh"}`, "", good},
		{"ipv6 loopback http", `{"issuer":"http://[::1]:8080","clientId":"gh"}`, "", good},
		{"plain http", `{"issuer":"http://idp.example","clientId":"gh"}`, "must use https", nil},
		{"http on a private address", `{"issuer":"http://10.0.0.1","clientId":"gh"}`, "must use https", nil},
		{"relative", `{"issuer":"idp.example","clientId":"gh"}`, "not an absolute URL", nil},
		{"query", `{"issuer":"https://idp.example?x=1","clientId":"gh"}`, "no credentials, query or fragment", nil},
		{"fragment", `{"issuer":"https://idp.example#x","clientId":"gh"}`, "no credentials, query or fragment", nil},
		{"credentials", `{"issuer":"https://u:p@idp.example","clientId":"gh"}`, "no credentials, query or fragment", nil},
		{"no issuer", `{"clientId":"gh"}`, "issuer: required", nil},
		{"no client", `{"issuer":"https://idp.example"}`, "clientId is required", nil},
		{"client with spaces", `{"issuer":"https://idp.example","clientId":" gh"}`, "clientId is required", nil},
		{"unknown field", `{"issuer":"https://idp.example","clientId":"gh","clientSecret":"x"}`, "unknown field", nil},
		{"bad scope", `{"issuer":"https://idp.example","clientId":"gh","scopes":["openid email"]}`, "not a valid scope", nil},
		{"skew too large", `{"issuer":"https://idp.example","clientId":"gh","clockSkew":3600}`, "clockSkew", nil},
		{"negative skew", `{"issuer":"https://idp.example","clientId":"gh","clockSkew":-1}`, "clockSkew", nil},
		{"trailing data", `{"issuer":"https://idp.example","clientId":"gh"} {}`, "trailing data", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.Scopes, " ") != "openid email profile" || c.ClockSkew != 60 {
				t.Fatalf("defaults %+v", c)
			}
		})
	}
	c, err := ParseConfig([]byte(`{"issuer":"https://idp.example","clientId":"gh","scopes":["groups","openid","groups"],"clockSkew":5}`))
	if err != nil || strings.Join(c.Scopes, " ") != "openid groups" || c.ClockSkew != 5 {
		t.Fatalf("scopes %+v, %v", c, err)
	}
}

func TestOIDCNewOIDCErrors(t *testing.T) {
	ctx := storetest.Context(context.Background())
	st := storetest.SQLite(t)
	sealer := oidcTestSealer(t)
	op := newOIDCTestOP(t, "gh", "secret", oidcTestBase+CallbackPath("c1"))
	cfg := func(issuer string) store.RawJSON {
		b, _ := json.Marshal(Config{Issuer: issuer, ClientID: "gh"})
		return b
	}
	base := store.SSOConnection{ID: "c1", Kind: store.SSOOIDC, UsernameFrom: "claim:preferred_username", Config: cfg(op.issuer),
		Secret: sealer.Seal("secret", protocol.SealContext("c1"))}
	if _, err := New(ctx, base, st, sealer, oidcTestBase, nil, nil); err != nil {
		t.Fatalf("control: %v", err)
	}
	cases := []struct {
		name string
		edit func(c *store.SSOConnection)
		op   func()
		want string
	}{
		{"SAML connection", func(c *store.SSOConnection) { c.Kind = store.SSOSAML }, nil, "of kind"},
		{"username from nameid", func(c *store.SSOConnection) { c.UsernameFrom = "nameid" }, nil, "usernameFrom must be claim:NAME"},
		{"no secret", func(c *store.SSOConnection) { c.Secret = "" }, nil, "no client secret"},
		{"secret sealed for another connection", func(c *store.SSOConnection) { c.Secret = sealer.Seal("secret", protocol.SealContext("c2")) }, nil, "client secret"},
		{"issuer mismatch (trailing slash)", func(c *store.SSOConnection) { c.Config = cfg(op.issuer + "/") }, nil, "did not match"},
		{"nothing listening", func(c *store.SSOConnection) { c.Config = cfg("http://127.0.0.1:1") }, nil, "discovery"},
		{"private_key_jwt only", nil, func() { op.AuthMethods = []string{"private_key_jwt"} }, "neither client_secret_basic nor client_secret_post"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.edit != nil {
				tc.edit(&c)
			}
			if tc.op != nil {
				tc.op()
				defer func() { op.AuthMethods = []string{"client_secret_basic"} }()
			}
			_, err := New(ctx, c, st, sealer, oidcTestBase, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOIDCBoundedResponses(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + strings.Repeat("a", maxResponse) + `"}`))
	}))
	defer big.Close()
	sealer := oidcTestSealer(t)
	cfg, _ := json.Marshal(Config{Issuer: big.URL, ClientID: "gh"})
	_, err := New(context.Background(), store.SSOConnection{ID: "c1", Kind: store.SSOOIDC, UsernameFrom: "claim:sub",
		Config: cfg, Secret: sealer.Seal("s", protocol.SealContext("c1"))}, storetest.SQLite(t), sealer, oidcTestBase, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") {
		t.Fatalf("a discovery document over 1 MiB: %v", err)
	}
}

// BenchmarkOIDCSignIn: Start, the OP's redirect, Finish (token exchange,
// RS256 ID token verification with a cached key, userinfo), all on
// loopback with SQLite.
func BenchmarkOIDCSignIn(b *testing.B) {
	e := newOIDCEnv(b, nil)
	for b.Loop() {
		if _, _, err := e.finish(e.callback(), e.browser); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseOIDCConfig: no panic, and whatever is accepted is a valid,
// normalized configuration that parses again to itself.
func FuzzParseOIDCConfig(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://idp.example","clientId":"gh"}`))
	f.Add([]byte(`{"issuer":"http://127.0.0.1:9/x","clientId":"gh","scopes":["groups"],"clockSkew":5}`))
	f.Add([]byte(`{"issuer":"http://[::1]","clientId":"a b"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseConfig(raw)
		if err != nil {
			return
		}
		if c.Scopes[0] != "openid" || c.ClockSkew < 1 || c.ClockSkew > maxSkew || checkURL(c.Issuer) != nil {
			t.Fatalf("accepted %+v", c)
		}
		again, _ := json.Marshal(c)
		c2, err := ParseConfig(again)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("%+v does not parse back to itself: %+v, %v", c, c2, err)
		}
	})
}
