package oidc

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// oidcTestOP is an OpenID provider inside the test: discovery, JWKS, an
// authorization endpoint that answers at once (the user is already signed
// in), a token endpoint that checks the client, the redirect URI, the
// code's single use and the PKCE verifier (S256), and userinfo. Its knobs
// make it misbehave; set them before the step they affect.
type oidcTestOP struct {
	srv          *httptest.Server
	issuer       string
	key          *rsa.PrivateKey
	kid          string
	clientID     string
	clientSecret string
	redirectURI  string

	mu            sync.Mutex
	grants        map[string]oidcTestGrant // by code
	tokens        map[string]string        // access token -> sub
	discoveries   int
	tokenCalls    int
	pkceFailures  int
	lastAuthorize url.Values

	// Knobs.
	Sub          string         // the signed-in user's sub
	IDClaims     map[string]any // claims added to every ID token
	UserClaims   map[string]any // userinfo's claims besides sub
	AdvertiseIss bool           // authorization_response_iss_parameter_supported
	SendIss      bool           // put iss in the authorization response
	NoUserinfo   bool           // no userinfo endpoint in discovery
	AuthMethods  []string       // token_endpoint_auth_methods_supported
	Alg          string         // "RS256" (default), "none", "HS256" (keyed with the client secret), "foreign" (RS256, unknown key)
	// EditIDToken edits the ID token's claims before signing.
	EditIDToken func(claims map[string]any)
	// EditUserinfo edits userinfo's claims.
	EditUserinfo func(claims map[string]any)
	// AuthError makes the authorization endpoint answer with this error.
	AuthError string
}

type oidcTestGrant struct {
	challenge, nonce, sub, redirectURI string
}

// oidcTestKey is one RSA key for every test OP (RSA generation is slow).
var oidcTestKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var oidcForeignKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newOIDCTestOP(t testing.TB, clientID, clientSecret, redirectURI string) *oidcTestOP {
	op := &oidcTestOP{
		key: oidcTestKey(), kid: "k1", clientID: clientID, clientSecret: clientSecret, redirectURI: redirectURI,
		grants: map[string]oidcTestGrant{}, tokens: map[string]string{},
		Sub: "00u1alice", AdvertiseIss: true, SendIss: true, AuthMethods: []string{"client_secret_basic"}, Alg: "RS256",
		IDClaims:   map[string]any{"name": "Alice Liddell"},
		UserClaims: map[string]any{"preferred_username": "Alice", "email": "alice@example.test", "email_verified": true, "name": "Alice from userinfo"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	op.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	op.issuer = op.srv.URL
	t.Cleanup(op.srv.Close)
	return op
}

func (op *oidcTestOP) counts() (discoveries, tokenCalls, pkceFailures int) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.discoveries, op.tokenCalls, op.pkceFailures
}

func (op *oidcTestOP) discovery(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	op.discoveries++
	op.mu.Unlock()
	d := map[string]any{
		"issuer":                                op.issuer,
		"authorization_endpoint":                op.issuer + "/authorize",
		"token_endpoint":                        op.issuer + "/token",
		"jwks_uri":                              op.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "HS256", "none"}, // we must refuse the last two anyway
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": op.AuthMethods,
	}
	if op.AdvertiseIss {
		d["authorization_response_iss_parameter_supported"] = true
	}
	if !op.NoUserinfo {
		d["userinfo_endpoint"] = op.issuer + "/userinfo"
	}
	oidcWriteJSON(w, http.StatusOK, d)
}

func (op *oidcTestOP) jwks(w http.ResponseWriter, r *http.Request) {
	pub := op.key.PublicKey
	oidcWriteJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": op.kid,
		"n": oidcB64(pub.N.Bytes()), "e": oidcB64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (op *oidcTestOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	op.lastAuthorize = q
	op.mu.Unlock()
	switch {
	case q.Get("client_id") != op.clientID, q.Get("redirect_uri") != op.redirectURI:
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest) // never redirect to an unregistered URI
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	if op.SendIss {
		back.Set("iss", op.issuer)
	}
	switch {
	case op.AuthError != "":
		back.Set("error", op.AuthError)
		back.Set("error_description", "the user said no")
	case q.Get("response_type") != "code" || !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		back.Set("error", "invalid_request")
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		back.Set("error", "invalid_request")
		back.Set("error_description", "PKCE S256 required")
	default:
		code := oidcRandomText()
		op.mu.Lock()
		op.grants[code] = oidcTestGrant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), sub: op.Sub, redirectURI: q.Get("redirect_uri")}
		op.mu.Unlock()
		back.Set("code", code)
	}
	http.Redirect(w, r, op.redirectURI+"?"+back.Encode(), http.StatusFound)
}

func (op *oidcTestOP) token(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	op.tokenCalls++
	op.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		oidcWriteJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic { // RFC 6749 section 2.3.1: form-urlencoded before Basic
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != op.clientID || secret != op.clientSecret {
		oidcWriteJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	code := r.PostForm.Get("code")
	op.mu.Lock()
	g, ok := op.grants[code]
	delete(op.grants, code) // single use
	op.mu.Unlock()
	if r.PostForm.Get("grant_type") != "authorization_code" || !ok || r.PostForm.Get("redirect_uri") != g.redirectURI {
		oidcWriteJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "unknown or used code"})
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if oidcB64(sum[:]) != g.challenge {
		op.mu.Lock()
		op.pkceFailures++
		op.mu.Unlock()
		oidcWriteJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
		return
	}
	now := time.Now()
	claims := map[string]any{"iss": op.issuer, "sub": g.sub, "aud": op.clientID, "exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Unix(), "nonce": g.nonce}
	for k, v := range op.IDClaims {
		claims[k] = v
	}
	if op.EditIDToken != nil {
		op.EditIDToken(claims)
	}
	access := oidcRandomText()
	op.mu.Lock()
	op.tokens[access] = g.sub
	op.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	oidcWriteJSON(w, 200, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": op.sign(claims)})
}

func (op *oidcTestOP) userinfo(w http.ResponseWriter, r *http.Request) {
	access, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	op.mu.Lock()
	sub, ok := op.tokens[access]
	op.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	claims := map[string]any{"sub": sub}
	for k, v := range op.UserClaims {
		claims[k] = v
	}
	if op.EditUserinfo != nil {
		op.EditUserinfo(claims)
	}
	oidcWriteJSON(w, 200, claims)
}

// sign makes a compact JWS of claims with the knob's algorithm.
func (op *oidcTestOP) sign(claims map[string]any) string {
	alg := op.Alg
	header := map[string]any{"typ": "JWT", "alg": alg, "kid": op.kid}
	if alg == "foreign" {
		header["alg"] = "RS256"
	}
	if alg == "none" {
		delete(header, "kid")
	}
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	input := oidcB64(h) + "." + oidcB64(p)
	var sig []byte
	switch alg {
	case "none":
	case "HS256":
		m := hmac.New(sha256.New, []byte(op.clientSecret))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default:
		key := op.key
		if alg == "foreign" {
			key = oidcForeignKey()
		}
		d := sha256.Sum256([]byte(input))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
			panic(err)
		}
	}
	return input + "." + oidcB64(sig)
}

func oidcB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func oidcRandomText() string {
	b := make([]byte, 16)
	rand.Read(b)
	return oidcB64(b)
}

func oidcWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
