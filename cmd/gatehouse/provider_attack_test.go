package main

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// opAttack is the fixture with a go-oidc relying party ready.
type opAttack struct {
	*opFixture
	t        *testing.T
	provider *gooidc.Provider
	conf     oauth2.Config
}

func newOPAttack(t *testing.T) *opAttack {
	dsn := "sqlite:" + t.TempDir() + "/gatehouse.db"
	f := newOPFixture(t, dsn, inspect(t, dsn))
	p, err := gooidc.NewProvider(context.Background(), f.base)
	if err != nil {
		t.Fatal(err)
	}
	return &opAttack{opFixture: f, t: t, provider: p, conf: oauth2.Config{ClientID: f.clientID, ClientSecret: f.secret,
		Endpoint: p.Endpoint(), RedirectURL: f.redirect, Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}}}
}

// authorizeRaw sends one GET of the authorization endpoint with query and
// returns the answer without following it.
func (a *opAttack) authorizeRaw(b *opBrowser, query url.Values) (*http.Response, string) {
	a.t.Helper()
	return a.get(b, "/authorize?"+query.Encode())
}

// signIn signs Bob in through b and exchanges the code for tokens.
func (a *opAttack) signIn(b *opBrowser) *oauth2.Token {
	a.t.Helper()
	q := b.authorize(a.conf.AuthCodeURL("s"), a.base, "Bob.Ray")
	tok, err := a.conf.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

func (a *opAttack) query(extra map[string]string) url.Values {
	q := url.Values{"client_id": {a.clientID}, "redirect_uri": {a.redirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"s1"}}
	for k, v := range extra {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return q
}

// TestOpenIDProviderRedirectURIIsExact: a redirect_uri that differs from
// the registered one by a trailing slash, case, a query, a port or a host
// is refused with a page — never a redirect to it; and the token request
// must repeat the exact redirect_uri of its authorization request.
func TestOpenIDProviderRedirectURIIsExact(t *testing.T) {
	a := newOPAttack(t)
	b := newOPBrowser(t)
	for _, uri := range []string{opRedirect + "/", strings.Replace(opRedirect, "callback", "Callback", 1), opRedirect + "?x=1",
		opRedirect + "#frag", strings.Replace(opRedirect, ":1/", ":2/", 1), strings.Replace(opRedirect, "127.0.0.1", "localhost", 1),
		"https://evil.example/callback", ""} {
		res, body := a.authorizeRaw(b, a.query(map[string]string{"redirect_uri": uri}))
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "not valid") {
			t.Errorf("redirect_uri %q: %d Location %q %s\n%s", uri, res.StatusCode, res.Header.Get("Location"), res.Header.Get("Content-Type"), body)
		}
	}
	// An unknown client: a page too.
	if res, _ := a.authorizeRaw(b, a.query(map[string]string{"client_id": "no-such-client"})); res.StatusCode != 400 || res.Header.Get("Location") != "" {
		t.Errorf("unknown client: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// The code of a request is not exchanged with another redirect_uri.
	q := b.authorize(a.conf.AuthCodeURL("s"), a.base, "Bob.Ray")
	other := a.conf
	other.RedirectURL = opRedirect + "/"
	if _, err := other.Exchange(context.Background(), q.Get("code")); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("exchange with another redirect_uri: %v", err)
	}
}

// TestOpenIDProviderPKCE: a public client must use PKCE with S256; plain
// is refused for every client; a verifier missing, wrong, or unexpected
// is refused at the token endpoint.
func TestOpenIDProviderPKCE(t *testing.T) {
	a := newOPAttack(t)
	b := newOPBrowser(t)
	ctx := context.Background()
	r := gatehouse(t, a.env, "oidc", "client", "create", "--name", "SPA", "--public", "--first-party", "--redirect-uri", opRedirect)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	spa := strings.TrimSpace(r.stdout)
	v, challenge := pkce()
	for name, extra := range map[string]map[string]string{
		"public without PKCE": {"client_id": spa},
		"public with plain":   {"client_id": spa, "code_challenge": v, "code_challenge_method": "plain"},
		"confidential plain":  {"code_challenge": v, "code_challenge_method": "plain"},
	} {
		res, body := a.authorizeRaw(b, a.query(extra))
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), opRedirect) || loc.Query().Get("error") != "invalid_request" ||
			loc.Query().Get("state") != "s1" {
			t.Errorf("%s: %d %s %s", name, res.StatusCode, loc, body)
		}
	}
	exchange := func(client, secret string, verifier *string, query map[string]string) error {
		q := b.authorize(a.base+"/authorize?"+a.query(query).Encode(), a.base, "Bob.Ray")
		form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {opRedirect}, "client_id": {client}}
		if verifier != nil {
			form.Set("code_verifier", *verifier)
		}
		req, _ := http.NewRequest("POST", a.base+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if secret != "" {
			req.SetBasicAuth(client, secret)
		}
		res, body := do(t, req)
		if res.StatusCode == 200 {
			return nil
		}
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		return &oauth2.RetrieveError{ErrorCode: e.Error}
	}
	wrong := oauth2.GenerateVerifier()
	empty := ""
	for name, c := range map[string]struct {
		client, secret string
		verifier       *string
		query          map[string]string
		want           string
	}{
		"public, verifier missing":          {spa, "", nil, map[string]string{"client_id": spa, "code_challenge": challenge, "code_challenge_method": "S256"}, "invalid_request"},
		"public, wrong verifier":            {spa, "", &wrong, map[string]string{"client_id": spa, "code_challenge": challenge, "code_challenge_method": "S256"}, "invalid_grant"},
		"confidential, verifier dropped":    {a.clientID, a.secret, &empty, map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}, "invalid_request"},
		"downgrade: verifier, no challenge": {a.clientID, a.secret, &v, nil, "invalid_request"},
	} {
		err := exchange(c.client, c.secret, c.verifier, c.query)
		var re *oauth2.RetrieveError
		if err == nil || !errorsAs(err, &re) || re.ErrorCode != c.want {
			t.Errorf("%s: %v, want %s", name, err, c.want)
		}
	}
	if err := exchange(spa, "", &v, map[string]string{"client_id": spa, "code_challenge": challenge, "code_challenge_method": "S256"}); err != nil {
		t.Fatalf("public client with the right verifier: %v", err)
	}
	_ = ctx
}

func errorsAs(err error, target **oauth2.RetrieveError) bool {
	re, ok := err.(*oauth2.RetrieveError)
	*target = re
	return ok
}

// TestOpenIDProviderStateAndNonce: state and nonce come back exactly as
// sent, whatever they hold.
func TestOpenIDProviderStateAndNonce(t *testing.T) {
	a := newOPAttack(t)
	b := newOPBrowser(t)
	state, nonce := "a b&c=d/é?<x>%20", "n&o=n/ce é"
	q := b.authorize(a.conf.AuthCodeURL(state, gooidc.Nonce(nonce)), a.base, "Bob.Ray")
	if q.Get("state") != state {
		t.Fatalf("state %q, want %q", q.Get("state"), state)
	}
	tok, err := a.conf.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := a.provider.Verifier(&gooidc.Config{ClientID: a.clientID}).Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil || idt.Nonce != nonce {
		t.Fatalf("nonce %q (%v), want %q", idt.Nonce, err, nonce)
	}
}

// forged signs claims with alg none, or HS256 keyed with the provider's
// RSA public key (the algorithm confusion attack).
func forged(t *testing.T, base, alg string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"alg": alg, "typ": "JWT"})
	body := enc(claims)
	if alg == "none" {
		return head + "." + body + "."
	}
	res, jwks := get(t, base+"/keys", nil)
	if res.StatusCode != 200 {
		t.Fatal(jwks)
	}
	var set struct {
		Keys []struct{ N, E string }
	}
	json.Unmarshal([]byte(jwks), &set)
	pub := rsaPublic(t, set.Keys[0].N, set.Keys[0].E)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// TestOpenIDProviderForgedTokens: an ID token hint or an access token
// signed with alg none, or HS256 keyed with the public key, is refused
// (end_session does not log out nor redirect; userinfo answers 401).
func TestOpenIDProviderForgedTokens(t *testing.T) {
	a := newOPAttack(t)
	b := newOPBrowser(t)
	tok := a.signIn(b)
	now := time.Now()
	claims := map[string]any{"iss": a.base, "sub": a.bob.ID, "aud": a.clientID, "azp": a.clientID, "iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), "jti": "x", "client_id": a.clientID, "scope": "openid"}
	for _, alg := range []string{"none", "HS256"} {
		jwt := forged(t, a.base, alg, claims)
		res, body := a.get(b, "/end_session?"+url.Values{"id_token_hint": {jwt}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("end_session with a %s id_token_hint: %d %q %s", alg, res.StatusCode, res.Header.Get("Location"), body)
		}
		req, _ := http.NewRequest("GET", a.base+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+jwt)
		if res, body := do(t, req); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("userinfo with a %s access token: %d %s", alg, res.StatusCode, body)
		}
		if in := introspect(t, a.base, a.clientID, a.secret, jwt); in["active"] != false {
			t.Errorf("introspection of a %s token: %v", alg, in)
		}
	}
	// The session survived the forged logouts.
	if in := introspect(t, a.base, a.clientID, a.secret, tok.AccessToken); in["active"] != true {
		t.Fatalf("forged logouts ended the sign-in: %v", in)
	}
}

// get sends one GET of path with b's cookies and returns the answer
// without following it.
func (a *opAttack) get(b *opBrowser, path string) (*http.Response, string) {
	a.t.Helper()
	res, err := b.client.Get(a.base + path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// TestOpenIDProviderLogout: RP-initiated logout never redirects to an
// unregistered post_logout_redirect_uri; with the browser's session it
// ends the console session and every application's sign-in of it, and the
// other applications get a back-channel logout token.
func TestOpenIDProviderLogout(t *testing.T) {
	a := newOPAttack(t)
	b := newOPBrowser(t)
	ctx := context.Background()
	tok := a.signIn(b)
	idToken := tok.Extra("id_token").(string)
	// Open redirects: no client named → the default page; a client named
	// with an unregistered URI → refused.
	res, _ := a.get(b, "/end_session?"+url.Values{"post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || strings.Contains(loc, "evil") {
		t.Fatalf("end_session without a client: %d %q", res.StatusCode, loc)
	}
	// That logout ended the browser's session, and the application's
	// sign-in of it (a back-channel logout): sign in again.
	select {
	case <-a.logouts:
	case <-time.After(10 * time.Second):
		t.Fatal("no back-channel logout after a logout naming no client")
	}
	tok = a.signIn(b)
	idToken = tok.Extra("id_token").(string)
	for name, v := range map[string]url.Values{
		"client_id":     {"client_id": {a.clientID}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"id_token_hint": {"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"registered redirect_uri is not a post-logout one": {"id_token_hint": {idToken}, "post_logout_redirect_uri": {opRedirect}},
	} {
		res, body := a.get(b, "/end_session?"+v.Encode())
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %q %s", name, res.StatusCode, res.Header.Get("Location"), body)
		}
	}
	if in := introspect(t, a.base, a.clientID, a.secret, tok.AccessToken); in["active"] != true {
		t.Fatalf("a refused logout ended the sign-in: %v", in)
	}
	select {
	case lt := <-a.logouts:
		t.Fatalf("a logout token before the logout: %s", lt)
	default:
	}
	// The real logout: the session ends, the tokens die, the application
	// gets its logout token.
	res, _ = a.get(b, "/end_session?"+url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {opPostLogout}, "state": {"bye"}}.Encode())
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != opPostLogout+"?state=bye" {
		t.Fatalf("logout: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if in := introspect(t, a.base, a.clientID, a.secret, tok.AccessToken); in["active"] != false {
		t.Fatalf("after the logout: %v", in)
	}
	if res, _ := a.get(b, "/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the console session after the logout: %d", res.StatusCode)
	}
	select {
	case lt := <-a.logouts:
		var c struct {
			SID string `json:"sid"`
		}
		idt, _ := a.provider.Verifier(&gooidc.Config{ClientID: a.clientID}).Verify(ctx, idToken)
		idt.Claims(&c)
		checkLogoutToken(t, ctx, a.provider, a.clientID, lt, a.bob.ID, c.SID)
	case <-time.After(10 * time.Second):
		t.Fatal("no back-channel logout after the RP-initiated logout")
	}
}

func rsaPublic(t *testing.T, n, e string) *rsa.PublicKey {
	t.Helper()
	nb, err1 := base64.RawURLEncoding.DecodeString(n)
	eb, err2 := base64.RawURLEncoding.DecodeString(e)
	if err1 != nil || err2 != nil {
		t.Fatalf("JWKS key: %v %v", err1, err2)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
}

// TestOpenIDProviderRequestBoundToBrowser: an authorization request
// started in one browser (an attacker's) cannot be completed by another
// browser's session (a victim lured to its continuation link): the victim
// gets a page, and no code is issued.
func TestOpenIDProviderRequestBoundToBrowser(t *testing.T) {
	a := newOPAttack(t)
	victim, attacker := newOPBrowser(t), newOPBrowser(t)
	victim.authorize(a.conf.AuthCodeURL("v"), a.base, "Bob.Ray") // the victim is signed in
	res, _ := a.authorizeRaw(attacker, a.query(nil))
	lure := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(lure, "/authorize/continue?id=") {
		t.Fatalf("attacker's request: %d %q", res.StatusCode, lure)
	}
	res, body := a.get(victim, lure)
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" || !strings.Contains(body, "not valid") {
		t.Fatalf("the victim's browser completed the attacker's request: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestOpenIDProviderConsent: an application that is not first-party asks
// the administrator (a page in the console's layout); Allow gives the
// code, Cancel answers access_denied, and a cross-site POST of the form
// is refused.
func TestOpenIDProviderConsent(t *testing.T) {
	a := newOPAttack(t)
	r := gatehouse(t, a.env, "oidc", "client", "create", "--name", "Partner App", "--redirect-uri", opRedirect)
	fields := strings.Fields(r.stdout)
	if r.code != 0 || len(fields) != 2 {
		t.Fatalf("client: %+v", r)
	}
	b := newOPBrowser(t)
	b.authorize(a.conf.AuthCodeURL("s"), a.base, "Bob.Ray") // signed in, through the first-party App: no question
	ask := func() string {
		res, _ := a.authorizeRaw(b, a.query(map[string]string{"client_id": fields[0]}))
		next := res.Header.Get("Location")
		res, body := a.get(b, next)
		if res.StatusCode != 200 || !strings.Contains(body, "Partner App") || !strings.Contains(body, `value="allow"`) {
			t.Fatalf("consent page: %d %s", res.StatusCode, body)
		}
		return next
	}
	post := func(path, consent string, header map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", a.base+path, strings.NewReader(url.Values{"consent": {consent}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	next := ask()
	if res := post(next, "allow", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site consent: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res := post(next, "allow", map[string]string{"Sec-Fetch-Site": "same-origin"})
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("allow: %d %s", res.StatusCode, loc)
	}
	res = post(ask(), "deny", nil)
	loc, _ = url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("code") != "" {
		t.Fatalf("deny: %d %s", res.StatusCode, loc)
	}
}

// TestOpenIDProviderBodyLimit: a token request of a megabyte is refused
// without being read; the endpoint answers the next request normally.
func TestOpenIDProviderBodyLimit(t *testing.T) {
	a := newOPAttack(t)
	big := url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("x", 1<<20)}}.Encode()
	req, _ := http.NewRequest("POST", a.base+"/oauth/token", strings.NewReader(big))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.clientID, a.secret)
	res, body := do(t, req)
	var e struct{ Error string }
	json.Unmarshal([]byte(body), &e)
	if res.StatusCode != http.StatusBadRequest || e.Error != "invalid_request" { // not read: never reaches the code's check (invalid_grant)
		t.Fatalf("a 1 MiB token request: %d %s", res.StatusCode, body)
	}
	if in := introspect(t, a.base, a.clientID, a.secret, "not-a-token"); in["active"] != false {
		t.Fatalf("introspection after: %v", in)
	}
}

// TestOpenIDProviderIntrospection: the introspection endpoint
// authenticates its client (Basic, form-encoded parts, or the body; never
// both, never a public or disabled client) and answers an OAuth error in
// JSON when it cannot; it says active only of a live access token of the
// asking client, with the grant and the claims its scopes release.
func TestOpenIDProviderIntrospection(t *testing.T) {
	a := newOPAttack(t)
	b := newOPBrowser(t)
	tok := a.signIn(b)
	// post sends form to the endpoint, with Basic credentials when user
	// is not "", and returns the status, the WWW-Authenticate header and
	// the JSON body.
	post := func(method, user, pass string, form url.Values) (int, string, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, a.base+"/oauth/introspect", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, body := do(t, req)
		var out map[string]any
		if err := json.Unmarshal([]byte(body), &out); err != nil || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %v: %d %s %q", method, form, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		return res.StatusCode, res.Header.Get("WWW-Authenticate"), out
	}
	token := url.Values{"token": {tok.AccessToken}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}

	// Discovery names both ways to authenticate.
	var disc struct {
		Endpoint string   `json:"introspection_endpoint"`
		Methods  []string `json:"introspection_endpoint_auth_methods_supported"`
	}
	if res, body := a.get(b, "/.well-known/openid-configuration"); res.StatusCode != 200 || json.Unmarshal([]byte(body), &disc) != nil ||
		disc.Endpoint != a.base+"/oauth/introspect" || strings.Join(disc.Methods, " ") != "client_secret_basic client_secret_post" {
		t.Fatalf("discovery: %d %+v", res.StatusCode, disc)
	}
	// The answer for a live token: the grant and the claims.
	status, _, in := post("POST", a.clientID, a.secret, token)
	want := map[string]any{"active": true, "client_id": a.clientID, "token_type": "Bearer", "sub": a.bob.ID, "iss": a.base,
		"scope": "openid profile email offline_access", "preferred_username": "Bob.Ray", "name": "Bob Ray", "given_name": "Bob",
		"family_name": "Ray", "email": "bob.ray@acme.test", "org_id": a.org.ID, "org_slug": "acme", "role": "Administrator"}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("introspection %s = %v, want %v", k, in[k], v)
		}
	}
	if status != 200 || fmt.Sprint(in["aud"]) != "["+a.clientID+"]" || fmt.Sprint(in["amr"]) != "[pwd]" || in["email_verified"] != nil ||
		in["exp"].(float64) <= float64(time.Now().Unix()) || in["iat"] == nil || in["auth_time"] == nil {
		t.Fatalf("introspection: %d %v", status, in)
	}
	// The credentials in the body, or form-encoded in Basic (RFC 6749
	// §2.3.1: every character may be escaped).
	escaped := ""
	for _, c := range []byte(a.secret) {
		escaped += fmt.Sprintf("%%%02X", c)
	}
	for name, c := range map[string][3]string{
		"client_secret_post":   {"", "", ""},
		"Basic, escaped parts": {url.QueryEscape(a.clientID), escaped, ""},
		"Basic and client_id":  {a.clientID, a.secret, a.clientID},
	} {
		form := token
		if c[0] == "" {
			form = with(token, "client_id", a.clientID, "client_secret", a.secret)
		} else if c[2] != "" {
			form = with(token, "client_id", c[2])
		}
		if status, _, in := post("POST", c[0], c[1], form); status != 200 || in["active"] != true {
			t.Errorf("%s: %d %v", name, status, in)
		}
	}

	// A public client and a disabled one cannot introspect.
	r := gatehouse(t, a.env, "oidc", "client", "create", "--name", "SPA", "--public", "--redirect-uri", opRedirect)
	spa := strings.TrimSpace(r.stdout)
	other := gatehouse(t, a.env, "oidc", "client", "create", "--name", "Other", "--redirect-uri", opRedirect)
	o := strings.Fields(other.stdout)
	if r.code != 0 || other.code != 0 || len(o) != 2 {
		t.Fatalf("client create: %+v %+v", r, other)
	}
	if r := gatehouse(t, a.env, "oidc", "client", "disable", o[0]); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// Refused clients: 401 invalid_client, with the Basic challenge when
	// Basic was used; nothing said of the token.
	for name, c := range map[string]struct {
		user, pass string
		form       url.Values
		basic      bool
	}{
		"wrong secret":          {a.clientID, a.secret + "x", token, true},
		"secret of another":     {a.clientID, o[1], token, true},
		"unknown client":        {"no-such-client", a.secret, token, true},
		"public client":         {spa, "anything", token, true},
		"public client, post":   {"", "", with(token, "client_id", spa), false},
		"disabled client":       {o[0], o[1], token, true},
		"no credentials":        {"", "", token, false},
		"secret without id":     {"", "", with(token, "client_secret", a.secret), false},
		"bad escape":            {a.clientID, "%zz", token, true},
		"Basic and body secret": {a.clientID, a.secret, with(token, "client_secret", a.secret), true},
		"Basic, other body id":  {a.clientID, a.secret, with(token, "client_id", o[0]), true},
	} {
		status, challenge, in := post("POST", c.user, c.pass, c.form)
		if status != http.StatusUnauthorized || in["error"] != "invalid_client" || in["active"] != nil || (challenge != "") != c.basic {
			t.Errorf("%s: %d %q %v", name, status, challenge, in)
		}
	}
	// Bad requests: JSON errors.
	if status, _, in := post("POST", a.clientID, a.secret, url.Values{}); status != 400 || in["error"] != "invalid_request" {
		t.Errorf("no token: %d %v", status, in)
	}
	if status, _, in := post("GET", a.clientID, a.secret, token); status != 405 || in["error"] != "invalid_request" {
		t.Errorf("GET: %d %v", status, in)
	}
	// Inactive: a refresh token, an unknown or mangled token, another
	// client's token; and after the grant's revocation.
	for name, v := range map[string]string{"refresh token": tok.RefreshToken, "garbage": "x", "mangled": tok.AccessToken[:len(tok.AccessToken)-2] + "AA",
		"refresh id as access token": strings.TrimPrefix(tok.RefreshToken, "gh_rt_")} {
		if status, _, in := post("POST", a.clientID, a.secret, url.Values{"token": {v}}); status != 200 || len(in) != 1 || in["active"] != false {
			t.Errorf("%s: %d %v", name, status, in)
		}
	}
	third := gatehouse(t, a.env, "oidc", "client", "create", "--name", "Third", "--redirect-uri", opRedirect)
	th := strings.Fields(third.stdout)
	if status, _, in := post("POST", th[0], th[1], token); status != 200 || len(in) != 1 || in["active"] != false {
		t.Errorf("another client's token: %d %v", status, in)
	}
	req, _ := http.NewRequest("POST", a.base+"/revoke", strings.NewReader(url.Values{"token": {tok.RefreshToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(a.clientID, a.secret)
	if res, body := do(t, req); res.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	if status, _, in := post("POST", a.clientID, a.secret, token); status != 200 || len(in) != 1 || in["active"] != false {
		t.Errorf("after the grant's revocation: %d %v", status, in)
	}
}
