package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"gatehouse/admin/api"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

// serveFixture is a gatehouse serve on SQLite with an organization
// ("acme", owner Jane.Doe still Pending), a Super Administrator API key,
// and the environment the CLI needs to reach the same database.
type serveFixture struct {
	srv   *server
	env   map[string]string
	store *store.SQL
	org   store.Org
	key   string
	link  string // the owner's activation link
}

func newServeFixture(t *testing.T, extraEnv map[string]string) *serveFixture {
	t.Helper()
	return newServeFixtureOn(t, filepath.Join(t.TempDir(), "gatehouse.db"), extraEnv)
}

// newServeFixtureOn is newServeFixture on the database dsn.
func newServeFixtureOn(t *testing.T, dsn string, extraEnv map[string]string) *serveFixture {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"GATEHOUSE_DB": dsn,
		"GATEHOUSE_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))}
	for k, v := range extraEnv {
		env[k] = v
	}
	r := gatehouse(t, env, orgArgs("acme", "--domain", "example.com", "--base-url", "http://"+addr)...)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	link := parseOrgCreate(t, r.stdout).link
	r = gatehouse(t, env, "api-key", "create", "--org", "acme", "--name", "test")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	f := &serveFixture{env: env, key: strings.TrimSpace(r.stdout), link: link, store: inspect(t, env["GATEHOUSE_DB"])}
	f.org, _ = f.store.OrgBySlug(context.Background(), "acme")
	f.srv = startServe(t, addr, env, "--addr", addr)
	return f
}

// call sends a request to the server with the fixture's API key (unless
// header sets Authorization to "").
func (f *serveFixture) call(t *testing.T, method, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return do(t, req)
}

// problemCode is the code of a problem+json body, "" for any other body.
func problemCode(resp *http.Response, body string) string {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		return ""
	}
	var p struct {
		Code string `json:"code"`
	}
	json.Unmarshal([]byte(body), &p)
	return p.Code
}

// TestServeWiresEveryDocumentedRoute sends a request to every path and
// method of the /api/v1/openapi.json that gatehouse serve serves, through
// serve, with a Super Administrator's API key and, in the path, ids of
// records that exist. A route is wired when its answer is a handler's: not
// the API's catch-all (code no_such_endpoint), nor the mux's plain 404 or
// 405; and, as every id names a record that exists, no 404 or 405 at all.
// Deletions run last, so the records stay for the other requests.
func TestServeWiresEveryDocumentedRoute(t *testing.T) {
	f := newServeFixture(t, nil)
	ctx := storetest.Context(context.Background())

	// The records the paths name: an invited administrator, a SCIM token,
	// a second API key, a SAML connection (made from the command line,
	// which works whatever the API serves).
	resp, body := f.call(t, "POST", "/api/v1/administrators", `{"username":"JDoe","firstName":"Jane","lastName":"Doe","email":"jdoe@example.com"}`, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("invite: %d %s", resp.StatusCode, body)
	}
	invited, err := f.store.AdministratorByUsername(ctx, f.org.ID, "JDoe")
	if err != nil {
		t.Fatal(err)
	}
	if r := gatehouse(t, f.env, "scim", "token", "create", "--org", "acme"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := gatehouse(t, f.env, "api-key", "create", "--org", "acme", "--name", "to revoke"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	md := filepath.Join(t.TempDir(), "idp.xml")
	os.WriteFile(md, []byte(idpMetadata(t)), 0o600)
	r := gatehouse(t, f.env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md,
		"--base-url", f.srv.base)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	conn := strings.TrimSpace(r.stdout)
	r = gatehouse(t, f.env, "oidc", "client", "create", "--name", "App", "--redirect-uri", "https://app.example/cb", "--org", "acme")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	client := strings.SplitN(r.stdout, "\n", 2)[0]
	tokens, _ := f.store.SCIMTokens(ctx, f.org.ID)
	keys, _ := f.store.APIKeys(ctx, f.org.ID)
	var revocable string
	for _, k := range keys {
		if k.Name == "to revoke" {
			revocable = k.ID
		}
	}
	if len(tokens) != 1 || revocable == "" {
		t.Fatalf("fixture: tokens %v, keys %v", tokens, keys)
	}
	ids := map[string]string{ // by the path's first segments
		"/administrators/{id}":  invited.ID,
		"/scim/tokens/{id}":     tokens[0].ID,
		"/api-keys/{id}":        revocable,
		"/sso/connections/{id}": conn,
		"/oidc-clients/{id}":    client,
	}

	resp, body = f.call(t, "GET", "/api/v1/openapi.json", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	type operation struct{ method, path string }
	var ops []operation
	for path, item := range doc.Paths {
		for m := range item {
			switch m := strings.ToUpper(m); m {
			case "GET", "POST", "PUT", "PATCH", "DELETE":
				ops = append(ops, operation{m, path})
			}
		}
	}
	if len(ops) < 35 {
		t.Fatalf("openapi.json documents %d operations; the API has more than 35", len(ops))
	}
	slices.SortFunc(ops, func(a, b operation) int {
		if (a.method == "DELETE") != (b.method == "DELETE") {
			if a.method == "DELETE" {
				return 1
			}
			return -1
		}
		return strings.Compare(a.path+" "+a.method, b.path+" "+b.method)
	})

	param := regexp.MustCompile(`\{[^}]+\}`)
	var unwired []string
	for _, op := range ops {
		path, known := op.path, true
		if loc := param.FindStringIndex(path); loc != nil {
			id, ok := ids[path[:loc[1]]]
			if !ok { // a resource this test does not know: any id, and only the catch-all is refused
				id, known = uuid.NewString(), false
			}
			path = path[:loc[0]] + id + path[loc[1]:]
			if param.MatchString(path) {
				t.Fatalf("%s: more than one path parameter; give this test its ids", op.path)
			}
		}
		body := ""
		if op.method != "GET" && op.method != "DELETE" {
			body = "{}"
		}
		resp, out := f.call(t, op.method, api.Prefix+path, body, nil)
		code := problemCode(resp, out)
		switch {
		case code == api.CodeNoSuchEndpoint,
			(resp.StatusCode == 404 || resp.StatusCode == 405) && (code == "" || known):
			unwired = append(unwired, op.method+" "+api.Prefix+op.path+": "+resp.Status+" "+strings.TrimSpace(out))
		case resp.StatusCode >= 500:
			t.Errorf("%s %s: %d %s", op.method, path, resp.StatusCode, out)
		}
	}
	if len(unwired) > 0 {
		t.Errorf("documented routes that gatehouse serve does not serve:\n%s", strings.Join(unwired, "\n"))
	}

	// The catch-all is told apart: an unknown path and a known path with
	// another method answer its code.
	for _, req := range [][2]string{{"GET", "/api/v1/no-such-thing"}, {"PUT", "/api/v1/me"}, {"POST", "/api/v1/sso/connections/x/y"}} {
		resp, out := f.call(t, req[0], req[1], "", nil)
		if resp.StatusCode != 404 || problemCode(resp, out) != api.CodeNoSuchEndpoint {
			t.Errorf("%s %s: %d %s, want 404 %s", req[0], req[1], resp.StatusCode, out, api.CodeNoSuchEndpoint)
		}
	}
}

// TestServeSSOAPIRefusesOthers: the SSO routes serve now wires answer a
// Super Administrator of the connection's organization only — not an
// Administrator's key, not another organization's Super Administrator,
// not a caller without credentials — and a refusal changes nothing.
func TestServeSSOAPIRefusesOthers(t *testing.T) {
	f := newServeFixture(t, nil)
	md := filepath.Join(t.TempDir(), "idp.xml")
	os.WriteFile(md, []byte(idpMetadata(t)), 0o600)
	r := gatehouse(t, f.env, "sso", "create", "--org", "acme", "--kind", "saml", "--name", "Okta", "--metadata-file", md)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	conn := strings.TrimSpace(r.stdout)
	r = gatehouse(t, f.env, "api-key", "create", "--org", "acme", "--name", "admin", "--role", "Administrator")
	adminKey := strings.TrimSpace(r.stdout)
	if r := gatehouse(t, f.env, orgArgs("beta")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = gatehouse(t, f.env, "api-key", "create", "--org", "beta", "--name", "other")
	otherKey := strings.TrimSpace(r.stdout)
	if adminKey == "" || otherKey == "" {
		t.Fatal("fixture: no keys")
	}

	before, _ := f.store.SSOConnection(context.Background(), f.org.ID, conn)
	c := "/api/v1/sso/connections/" + conn
	for _, who := range []struct {
		name, auth string
		status     int
		code       string
	}{
		{"Administrator", "Bearer " + adminKey, 403, "forbidden"},
		{"another organization", "Bearer " + otherKey, 404, "not_found"},
		{"nobody", "", 401, "unauthenticated"},
	} {
		for _, req := range [][3]string{
			{"GET", "/api/v1/sso/connections", ""}, {"POST", "/api/v1/sso/connections", `{"kind":"saml","name":"x"}`},
			{"GET", c, ""}, {"PATCH", c, `{"enabled":false}`}, {"DELETE", c, ""},
			{"POST", c + "/test", ""}, {"GET", c + "/tests", ""},
		} {
			resp, body := f.call(t, req[0], req[1], req[2], map[string]string{"Authorization": who.auth})
			status, code := who.status, who.code
			if who.name == "another organization" && req[1] == "/api/v1/sso/connections" {
				if req[0] == "GET" { // its own, empty list
					status, code = 200, ""
				} else { // refused for the body, not for whose it is
					status, code = 400, "invalid_sso_connection"
				}
			}
			if resp.StatusCode != status || problemCode(resp, body) != code {
				t.Errorf("%s: %s %s = %d %s, want %d %s", who.name, req[0], req[1], resp.StatusCode, body, status, code)
			}
			if status == 200 && strings.Contains(body, conn) {
				t.Errorf("%s sees the connection: %s", who.name, body)
			}
		}
	}
	after, err := f.store.SSOConnection(context.Background(), f.org.ID, conn)
	if err != nil || after.Version != before.Version || !after.Enabled {
		t.Fatalf("the connection changed: %+v, %v", after.Version, err)
	}
}
