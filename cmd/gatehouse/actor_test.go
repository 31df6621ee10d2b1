package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/store"
)

// The audit log names who acted: an administrator who proves who they are
// (activation, password, SSO, sign-out with their session) and an identity
// provider over SCIM, never gatehouse itself by default (issue #12, "make
// the audit actor an explicit requirement"; the sign-out was "system").
// Through gatehouse serve on both databases.
func TestAuditActorsThroughServe(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn string, s *store.SQL) {
		op := newActorTestOP(t)
		addr := freeAddr(t)
		base := "http://" + addr
		env := map[string]string{"GATEHOUSE_DB": dsn, "GATEHOUSE_SECRET_KEY": signinKey, "GATEHOUSE_BASE_URL": base,
			"OIDC_SECRET": "client-secret"}
		activation := signinOrg(t, env, "acme", "jdoe", "--domain", "acme.test")
		r := gatehouse(t, env, "sso", "create", "--org", "acme", "--kind", "oidc", "--name", "Op", "--issuer", op.srv.URL,
			"--client-id", "gatehouse", "--client-secret-env", "OIDC_SECRET", "--username-from", "claim:preferred_username")
		if r.code != 0 {
			t.Fatalf("sso create: %s", r.stderr)
		}
		conn := strings.TrimSpace(r.stdout)
		if r := gatehouse(t, env, "scim", "enable", "--org", "acme"); r.code != 0 {
			t.Fatalf("scim enable: %s", r.stderr)
		}
		r = gatehouse(t, env, "scim", "token", "create", "--org", "acme")
		if r.code != 0 {
			t.Fatalf("scim token: %s", r.stderr)
		}
		token := strings.TrimSpace(r.stdout)
		startServe(t, addr, env, "--addr", addr)

		activate(t, base, activation)
		if a := postJSON(t, base+"/api/v1/session", `{"organization":"acme","username":"jdoe","password":"wrong password"}`, ""); a.status != 401 {
			t.Fatalf("wrong password: %d %v", a.status, a.body)
		}
		// jdoe signs in with the password, then out.
		console, _ := cookiejar.New(nil)
		jdoe := &http.Client{Jar: console}
		res, err := jdoe.Post(base+"/api/v1/session", "application/json",
			strings.NewReader(`{"organization":"acme","username":"jdoe","password":"`+signinPassword+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("password sign-in: %d", res.StatusCode)
		}
		req, _ := http.NewRequest("DELETE", base+"/api/v1/session", nil)
		if res, err = jdoe.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 204 {
			t.Fatalf("sign-out: %d", res.StatusCode)
		}
		req, _ = http.NewRequest("POST", base+"/scim/v2/Users", strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"alice","name":{"givenName":"Alice","familyName":"Liddell"},"emails":[{"value":"alice@acme.test","primary":true}],"active":true}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		if res, body := do(t, req); res.StatusCode != 201 {
			t.Fatalf("SCIM create: %d %s", res.StatusCode, body)
		}
		// alice signs in through the OIDC connection: start, the provider's
		// redirect, the callback.
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), base+"/sso/") || strings.HasPrefix(req.URL.String(), op.srv.URL) {
				return nil
			}
			return http.ErrUseLastResponse // after the callback: signed in
		}}
		res, err = browser.Get(base + "/sso/start/" + conn)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound {
			t.Fatalf("SSO sign-in ended with %d at %s", res.StatusCode, res.Request.URL)
		}

		org, err := s.OrgBySlug(t.Context(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		log, err := s.AuditLog(t.Context(), org.ID, store.AuditQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		type want struct{ action, target, kind, name string }
		for _, w := range []want{
			{store.AuditOrgCreate, "", store.ActorOperator, ""},
			{store.AuditInvitationUse, "jdoe", store.ActorAdministrator, "jdoe"},
			{store.AuditSignInFailure, "jdoe", store.ActorSystem, ""}, // nobody proven yet: gatehouse, named explicitly
			{store.AuditSignInSuccess, "jdoe", store.ActorAdministrator, "jdoe"},
			{store.AuditSignOut, "jdoe", store.ActorAdministrator, "jdoe"},
			{store.AuditAdministratorCreate, "alice", store.ActorSCIM, ""},
			{store.AuditSignInSuccess, "alice", store.ActorAdministrator, "alice"},
		} {
			found := false
			for _, e := range log {
				if e.Action != w.action || w.target != "" && e.TargetName != w.target {
					continue
				}
				found = true
				if e.ActorKind != w.kind || w.name != "" && e.ActorName != w.name {
					t.Errorf("%s of %q: actor %s %q, want %s %q", w.action, w.target, e.ActorKind, e.ActorName, w.kind, w.name)
				}
			}
			if !found {
				t.Errorf("no %s entry for %q in %+v", w.action, w.target, log)
			}
		}
		for _, e := range log {
			if e.ActorKind == store.ActorSystem && e.Action != store.AuditSignInFailure {
				t.Errorf("%s of %q by the system", e.Action, e.TargetName)
			}
		}
	})
}

// actorTestOP is an OpenID provider with one signed-in user, alice:
// discovery, keys, an authorization endpoint that answers at once and a
// token endpoint that returns an RS256 ID token carrying the request's
// nonce. Its client checks are left to the sso/oidc tests.
type actorTestOP struct {
	srv *httptest.Server
	key *rsa.PrivateKey

	mu     sync.Mutex
	nonces map[string]string // code -> nonce
}

func newActorTestOP(t *testing.T) *actorTestOP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &actorTestOP{key: key, nonces: map[string]string{}}
	b64 := base64.RawURLEncoding.EncodeToString
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := op.srv.URL
		json.NewEncoder(w).Encode(map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
			"jwks_uri": u + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
			"code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := rand.Text()
		op.mu.Lock()
		op.nonces[code] = q.Get("nonce")
		op.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+q.Get("state"), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		nonce, ok := op.nonces[r.PostFormValue("code")]
		delete(op.nonces, r.PostFormValue("code"))
		op.mu.Unlock()
		if !ok {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		now := time.Now()
		header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
		claims, _ := json.Marshal(map[string]any{"iss": op.srv.URL, "sub": "00u1alice", "aud": "gatehouse", "iat": now.Unix(),
			"exp": now.Add(5 * time.Minute).Unix(), "nonce": nonce, "preferred_username": "alice"})
		signed := b64(header) + "." + b64(claims)
		sum := sha256.Sum256([]byte(signed))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300,
			"id_token": signed + "." + b64(sig)})
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}
