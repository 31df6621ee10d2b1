package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSecurityHeaders: through gatehouse serve, every response
// carries X-Content-Type-Options: nosniff, and every one that sets a
// cookie or carries a secret carries Cache-Control: no-store — the
// password sign-in's 303, the API's session, the SSO start's browser
// binding, new API keys and SCIM tokens.
func TestServeSecurityHeaders(t *testing.T) {
	f := newServeFixture(t, nil)
	const password = "a very good passphrase"
	token, _ := url.ParseQuery(f.link[strings.Index(f.link, "?")+1:])
	if resp, body := f.call(t, "POST", "/api/v1/activation", `{"token":"`+token.Get("token")+`","password":"`+password+`"}`,
		map[string]string{"Authorization": ""}); resp.StatusCode != 200 {
		t.Fatalf("activate: %d %s", resp.StatusCode, body)
	}
	md := filepath.Join(t.TempDir(), "idp.xml")
	os.WriteFile(md, []byte(idpMetadata(t)), 0o600)
	r := gatehouse(t, f.env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	conn := strings.TrimSpace(r.stdout)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path, contentType, body string, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.base+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bearer := map[string]string{"Authorization": "Bearer " + f.key}
	form := url.Values{"organization": {"acme"}, "username": {"Jane.Doe"}, "password": {password}}.Encode()
	tests := []struct {
		name, method, path, contentType, body string
		header                                map[string]string
		status                                int
		noStore                               bool // Cache-Control: no-store required
		cookie                                bool // the response sets a cookie
	}{
		{"password sign-in", "POST", "/login/password", "application/x-www-form-urlencoded", form, nil, http.StatusSeeOther, true, true},
		{"password sign-in refused", "POST", "/login/password", "application/x-www-form-urlencoded",
			strings.Replace(form, "passphrase", "guess", 1), nil, http.StatusUnauthorized, false, false},
		{"API sign-in", "POST", "/api/v1/session", "application/json",
			`{"organization":"acme","username":"Jane.Doe","password":"` + password + `"}`, nil, 200, true, true},
		{"API sign-out", "DELETE", "/api/v1/session", "", "", map[string]string{"Cookie": "gatehouse_session=x"}, 204, true, true},
		{"SSO start", "GET", "/sso/start/" + conn, "", "", nil, http.StatusSeeOther, true, true},
		{"new API key", "POST", "/api/v1/api-keys", "application/json", `{"name":"ci"}`, bearer, 201, true, false},
		{"new SCIM token", "POST", "/api/v1/scim/tokens", "application/json", `{"description":"Okta"}`, bearer, 201, true, false},
		{"healthz", "GET", "/healthz", "", "", nil, 200, false, false},
		{"readyz", "GET", "/readyz", "", "", nil, 200, false, false},
		{"metrics", "GET", "/metrics", "", "", nil, 200, false, false},
		{"unknown path", "GET", "/no/such/path", "", "", nil, 404, false, false},
		{"unknown method", "BREW", "/healthz", "", "", nil, 405, false, false},
		{"unknown API path", "GET", "/api/v1/no-such-thing", "", "", bearer, 404, false, false},
		{"openapi.json", "GET", "/api/v1/openapi.json", "", "", nil, 200, false, false},
		{"SCIM without token", "GET", "/scim/v2/Users", "", "", nil, 401, false, false},
		{"SCIM discovery", "GET", "/scim/v2/ServiceProviderConfig", "", "", nil, 200, false, false},
		{"login page", "GET", "/login", "", "", nil, 200, false, false},
		{"forward auth signed out", "GET", "/auth/verify", "", "", nil, 401, true, false},
		{"SP metadata", "GET", "/sso/saml/" + conn + "/metadata", "", "", nil, 200, false, false},
		{"unknown SSO start", "GET", "/sso/start/nope", "", "", nil, 404, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(tt.method, tt.path, tt.contentType, tt.body, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if tt.cookie != (len(resp.Header.Values("Set-Cookie")) > 0) {
				t.Errorf("Set-Cookie %q: the test expects cookie=%t", resp.Header.Values("Set-Cookie"), tt.cookie)
			}
			if cc := resp.Header.Get("Cache-Control"); tt.noStore && cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

// TestSecureHeadersEveryWayOut: the cookie rule holds however a handler
// sends its header — WriteHeader, a first Write, a Flush through
// http.ResponseController, after a 1xx — and overrides a cacheable
// Cache-Control.
func TestSecureHeadersEveryWayOut(t *testing.T) {
	ways := map[string]func(w http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusSeeOther) },
		"Write":       func(w http.ResponseWriter) { w.Write([]byte("x")) },
		"Flush":       func(w http.ResponseWriter) { http.NewResponseController(w).Flush() },
		"after 103": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusOK)
		},
	}
	for name, send := range ways {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(secureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "public, max-age=3600")
				http.SetCookie(w, &http.Cookie{Name: "s", Value: "secret"})
				send(w)
			})))
			defer srv.Close()
			resp, _ := get(t, srv.URL, nil)
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("Cache-Control %q, X-Content-Type-Options %q", cc, resp.Header.Get("X-Content-Type-Options"))
			}
		})
	}
}
