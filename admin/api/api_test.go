package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"gatehouse/admin"
	"gatehouse/admin/outbox"
	"gatehouse/scim"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// env is a gatehouse with the management API and SCIM on one mux, an
// organization whose owner is an active Super Administrator, and API keys
// acting as a Super Administrator and as an Administrator.
type env struct {
	t          *testing.T
	s          *store.SQL
	url        string
	org        store.Org
	owner      store.Administrator
	superKey   string
	adminKey   string
	scimToken  string
	httpClient *http.Client
	sealer     *admin.Sealer
}

func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range []struct {
		name string
		open func(testing.TB) *store.SQL
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b.open(t)))
		})
	}
}

func newEnv(t *testing.T, s *store.SQL) *env {
	ctx := storetest.Context(context.Background())
	orgs := &admin.Orgs{Store: s, BaseURL: "https://gh.example"}
	org, owner, _, err := orgs.Create(ctx, admin.OrgSpec{Slug: "acme", Name: "Acme", Domains: []string{"acme.test"},
		Owner: admin.OwnerSpec{UserName: "owner", Email: "owner@acme.test", GivenName: "Olive", FamilyName: "Owner"}})
	if err != nil {
		t.Fatal(err)
	}
	owner, err = s.UpdateAdministrator(ctx, org.ID, owner.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Status = store.StatusActive; return nil })
	if err != nil {
		t.Fatal(err)
	}
	keys := &admin.APIKeys{Store: s}
	op := admin.Principal{OrgID: org.ID, Operator: true, Actor: store.Actor{Kind: store.ActorOperator, Name: "test"}}
	superKey, _, err := keys.Create(ctx, op, admin.APIKeySpec{Name: "super", Role: store.RoleSuperAdministrator})
	if err != nil {
		t.Fatal(err)
	}
	adminKey, _, err := keys.Create(ctx, op, admin.APIKeySpec{Name: "plain", Role: store.RoleAdministrator})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := (&admin.SCIMTokens{Store: s}).Create(ctx, org.ID, "idp", 0)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	sealer, err := admin.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	mail := &outbox.Queue{Store: s, Sealer: sealer}
	mux := http.NewServeMux()
	(&API{Store: s, Orgs: orgs, Administrators: &admin.Administrators{Store: s, BaseURL: "https://gh.example", Mail: mail},
		APIKeys: keys, SCIMTokens: &admin.SCIMTokens{Store: s}, BaseURL: "https://gh.example",
		SignIn: &admin.SignIn{Store: s, Sealer: sealer, Mail: mail, BaseURL: "https://gh.example"}}).Register(mux)
	scim.New(s, &admin.Lifecycle{Store: s}, scim.Config{BaseURL: "https://gh.example", TokenCacheTTL: -1, RateLimit: -1}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, s: s, url: srv.URL, org: org, owner: owner, superKey: superKey, adminKey: adminKey, scimToken: token,
		httpClient: srv.Client(), sealer: sealer}
}

// do sends a request with the credential (an API key, a SCIM token or
// "") and returns the status and the decoded JSON body; refusals of the
// management API must be problem documents.
func (e *env) do(method, path, cred, body string) (int, map[string]any) {
	e.t.Helper()
	h := map[string]string{}
	if cred != "" {
		h["Authorization"] = "Bearer " + cred
	}
	if body != "" && strings.HasPrefix(path, "/scim/") {
		h["Content-Type"] = "application/scim+json"
	}
	st, out, _ := e.send(method, path, "", body, h)
	return st, out
}

// send is a request with a session cookie (when not "") and headers; it
// returns the status, the decoded JSON body and the response's cookies.
func (e *env) send(method, path, cookie, body string, headers map[string]string) (int, map[string]any, []*http.Cookie) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := e.httpClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: %d, body not JSON: %s", method, path, res.StatusCode, raw)
		}
	}
	if res.StatusCode >= 400 && !strings.HasPrefix(path, "/scim/") {
		if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
			e.t.Fatalf("%s %s: %d with Content-Type %q, want a problem document", method, path, res.StatusCode, ct)
		}
	}
	return res.StatusCode, out, res.Cookies()
}

// refused sends a request that must be refused with status and code, and
// checks that it wrote nothing.
func (e *env) refused(method, path, cred, body string, status int, code string) {
	e.t.Helper()
	e.do("GET", "/api/v1/me", cred, "") // a key's first use records its last-used time
	before := storetest.TakeSnapshot(e.t, e.s)
	st, out := e.do(method, path, cred, body)
	if st != status || out["code"] != code {
		e.t.Fatalf("%s %s = %d %v, want %d %s", method, path, st, out, status, code)
	}
	if out["detail"] == "" || out["status"] != float64(status) {
		e.t.Fatalf("%s %s: problem document incomplete: %v", method, path, out)
	}
	storetest.AssertUnchanged(e.t, e.s, before)
}

const invite = `{"username":"JDoe","firstName":"Jane","lastName":"Doe","email":"jane@acme.test","phone":"+1 555 0100"}`

func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	for _, rt := range routes {
		served = append(served, rt.method+" "+rt.path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.json documents\n%v\nthe API serves\n%v", documented, served)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	st, out := e.do("GET", "/api/v1/openapi.json", "", "")
	if st != 200 || out["openapi"] != "3.1.0" {
		t.Fatalf("GET openapi.json = %d %v", st, out["openapi"])
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	e.refused("GET", "/api/v1/administrators", "", "", 401, "unauthenticated")
	e.refused("GET", "/api/v1/administrators", "gh_key_not-a-key", "", 401, "unauthenticated")
	e.refused("GET", "/api/v1/administrators", e.scimToken, "", 401, "unauthenticated") // a SCIM token is not an API key
	// A revoked key stops working at once.
	st, out := e.do("POST", "/api/v1/api-keys", e.superKey, `{"name":"short-lived"}`)
	if st != 201 || !strings.HasPrefix(out["key"].(string), admin.APIKeyPrefix) {
		t.Fatalf("create key = %d %v", st, out)
	}
	key, id := out["key"].(string), out["id"].(string)
	if st, _ := e.do("GET", "/api/v1/administrators", key, ""); st != 200 {
		t.Fatalf("new key: %d", st)
	}
	if st, _ := e.do("DELETE", "/api/v1/api-keys/"+id, e.superKey, ""); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	e.refused("GET", "/api/v1/administrators", key, "", 401, "unauthenticated")
	// Listing never shows a secret again.
	_, list := e.do("GET", "/api/v1/api-keys", e.superKey, "")
	for _, it := range list["items"].([]any) {
		if _, ok := it.(map[string]any)["key"]; ok {
			t.Fatalf("a listed key shows its secret: %v", it)
		}
	}
	// Only Super Administrators manage keys and SCIM tokens.
	e.refused("POST", "/api/v1/api-keys", e.adminKey, `{"name":"x"}`, 403, "forbidden")
	e.refused("GET", "/api/v1/scim/tokens", e.adminKey, "", 403, "forbidden")
	e.refused("GET", "/api/v1/nothing-here", e.superKey, "", 404, CodeNoSuchEndpoint)
}

func TestAdministratorRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		// Invite: Pending, listed with the seed's fields.
		st, a := e.do("POST", "/api/v1/administrators", e.adminKey, invite)
		if st != 201 || a["status"] != "Pending" || a["name"] != "Doe, Jane" || a["username"] != "JDoe" || a["role"] != "Administrator" {
			t.Fatalf("invite = %d %v", st, a)
		}
		id := a["id"].(string)
		// Refusals, each writing nothing.
		e.refused("POST", "/api/v1/administrators", e.adminKey, strings.Replace(invite, "JDoe", "jdoe", 1), 409, "username_taken")
		e.refused("POST", "/api/v1/administrators", e.adminKey, strings.Replace(invite, "acme.test", "elsewhere.test", 1), 400, "domain_not_registered")
		e.refused("POST", "/api/v1/administrators", e.adminKey, strings.Replace(invite, `"phone"`, `"role":"Super Administrator","phone"`, 1), 403, "forbidden_role")
		e.refused("POST", "/api/v1/administrators", e.adminKey, `{"username":"x","bogus":1}`, 400, "invalid_json")
		e.refused("POST", "/api/v1/administrators", e.adminKey, `{"username":"x"`, 400, "invalid_json")
		e.refused("PATCH", "/api/v1/administrators/"+id, e.adminKey, `{"role":"Super Administrator"}`, 403, "forbidden_role")
		e.refused("PATCH", "/api/v1/administrators/"+id, e.adminKey, `{"email":"jane@elsewhere.test"}`, 400, "domain_not_registered")
		e.refused("PATCH", "/api/v1/administrators/"+e.owner.ID, e.adminKey, `{"firstName":"Mallory"}`, 403, "forbidden_role")
		e.refused("POST", "/api/v1/administrators/"+id+"/deactivate", e.adminKey, "", 403, "forbidden")
		e.refused("POST", "/api/v1/administrators/"+e.owner.ID+"/deactivate", e.superKey, "", 403, "super_admin_protected")
		e.refused("DELETE", "/api/v1/administrators/"+e.owner.ID, e.superKey, "", 403, "super_admin_protected")
		// No Super Administrator is demoted by another (an API key is not
		// the owner): that is support's or the IdP's to do.
		e.refused("PATCH", "/api/v1/administrators/"+e.owner.ID, e.superKey, `{"role":"Administrator"}`, 403, "super_admin_protected")
		e.refused("GET", "/api/v1/administrators/no-such-id", e.adminKey, "", 404, "not_found")
		e.refused("POST", "/api/v1/administrators/"+id+"/reactivate", e.superKey, "", 409, "not_deactivated")
		e.refused("PATCH", "/api/v1/organization", e.adminKey, `{"requireTotp":true}`, 403, "forbidden")

		// Edits an Administrator may make.
		st, a = e.do("PATCH", "/api/v1/administrators/"+id, e.adminKey, `{"firstName":"Janet","phone":""}`)
		if st != 200 || a["name"] != "Doe, Janet" || a["phone"] != "" {
			t.Fatalf("edit = %d %v", st, a)
		}
		// A Super Administrator promotes; then the owner may be demoted.
		if st, a = e.do("PATCH", "/api/v1/administrators/"+id, e.superKey, `{"role":"Super Administrator"}`); st != 200 || a["role"] != "Super Administrator" {
			t.Fatalf("promote = %d %v", st, a)
		}
		// Nor through the API once there are two; support demotes.
		e.refused("PATCH", "/api/v1/administrators/"+id, e.superKey, `{"role":"Administrator"}`, 403, "super_admin_protected")
		demoted := store.RoleAdministrator
		op := admin.Principal{OrgID: e.org.ID, Operator: true, Actor: store.Actor{Kind: store.ActorOperator, Name: "test"}}
		if _, err := (&admin.Administrators{Store: e.s}).Update(context.Background(), op, id, admin.Edit{Role: &demoted}); err != nil {
			t.Fatalf("demote by support: %v", err)
		}
		// Deactivate and reactivate an Administrator.
		if st, a = e.do("POST", "/api/v1/administrators/"+id+"/deactivate", e.superKey, ""); st != 200 || a["status"] != "Deactivated" {
			t.Fatalf("deactivate = %d %v", st, a)
		}
		e.refused("POST", "/api/v1/administrators/"+id+"/deactivate", e.superKey, "", 409, "already_deactivated")
		if st, a = e.do("POST", "/api/v1/administrators/"+id+"/reactivate", e.superKey, ""); st != 200 || a["status"] != "Pending" {
			t.Fatalf("reactivate = %d %v (never signed in: back to Pending)", st, a)
		}
		if st, _ = e.do("POST", "/api/v1/administrators/"+id+"/invitation", e.adminKey, ""); st != 202 {
			t.Fatalf("resend = %d", st)
		}
		// List: filter, sort, page.
		st, l := e.do("GET", "/api/v1/administrators?q=DOE&sort=name&order=desc&limit=1", e.adminKey, "")
		if st != 200 || l["total"] != float64(1) || len(l["items"].([]any)) != 1 {
			t.Fatalf("list = %d %v", st, l)
		}
		st, l = e.do("GET", "/api/v1/administrators?status=Active", e.adminKey, "")
		if st != 200 || l["total"] != float64(1) || l["items"].([]any)[0].(map[string]any)["statusText"] != "Last Login: never" {
			t.Fatalf("list active = %d %v", st, l)
		}
		e.refused("GET", "/api/v1/administrators?sort=password", e.adminKey, "", 400, "invalid_query")
		e.refused("GET", "/api/v1/administrators?limit=100000", e.adminKey, "", 400, "invalid_query")

		// Every change is in the audit log with its actor.
		st, log := e.do("GET", "/api/v1/audit?target="+id, e.adminKey, "")
		if st != 200 {
			t.Fatalf("audit = %d %v", st, log)
		}
		var actions []string
		for _, it := range log["items"].([]any) {
			en := it.(map[string]any)
			actions = append(actions, en["action"].(string)+" by "+en["actorName"].(string))
		}
		want := []string{"invitation.create by plain", "administrator.update by super", "administrator.update by super",
			"administrator.update by test", "administrator.update by super", "administrator.update by plain",
			"invitation.create by plain", "administrator.create by plain"}
		if !slices.Equal(actions, want) {
			t.Fatalf("audit of %s:\n%v\nwant\n%v", id, actions, want)
		}
		// An address outside the registered domains, from before they were
		// registered, does not stop other edits; changing to one is refused.
		outside, err := e.s.CreateAdministrator(storetest.Context(context.Background()), store.Administrator{OrgID: e.org.ID, UserName: "legacy",
			Email: "legacy@elsewhere.test", GivenName: "L", FamilyName: "G", Role: store.RoleAdministrator, Status: store.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		if st, a = e.do("PATCH", "/api/v1/administrators/"+outside.ID, e.adminKey, `{"firstName":"Lee"}`); st != 200 || a["firstName"] != "Lee" {
			t.Fatalf("edit keeping an old address = %d %v", st, a)
		}
		e.refused("PATCH", "/api/v1/administrators/"+outside.ID, e.adminKey, `{"email":"lee@elsewhere.test"}`, 400, "domain_not_registered")

		// Deleting an Administrator.
		if st, _ = e.do("DELETE", "/api/v1/administrators/"+id, e.superKey, ""); st != 204 {
			t.Fatalf("delete = %d", st)
		}
		e.refused("GET", "/api/v1/administrators/"+id, e.adminKey, "", 404, "not_found")
	})
}

// TestSCIMLock is the lock end to end: SCIM on → manual writes refused
// while SCIM writes → SCIM off → SCIM refused and manual writes work; each
// toggle audited with its actor.
func TestSCIMLock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		_, a := e.do("POST", "/api/v1/administrators", e.adminKey, invite)
		id := a["id"].(string)
		if st, _ := e.do("GET", "/scim/v2/Users/"+id, e.scimToken, ""); st != 403 {
			t.Fatalf("SCIM while off = %d, want 403", st)
		}
		e.refused("PATCH", "/api/v1/organization", e.adminKey, `{"scimEnabled":true}`, 403, "forbidden")
		if st, o := e.do("PATCH", "/api/v1/organization", e.superKey, `{"scimEnabled":true}`); st != 200 || o["scimEnabled"] != true {
			t.Fatalf("SCIM on = %d %v", st, o)
		}
		e.refused("POST", "/api/v1/administrators", e.superKey, strings.Replace(invite, "JDoe", "other", 1), 409, "scim_enabled")
		e.refused("POST", "/api/v1/administrators/"+id+"/deactivate", e.superKey, "", 409, "scim_enabled")
		e.refused("PATCH", "/api/v1/administrators/"+id, e.superKey, `{"firstName":"X"}`, 409, "scim_enabled")
		e.refused("DELETE", "/api/v1/administrators/"+id, e.superKey, "", 409, "scim_enabled")
		e.refused("POST", "/api/v1/administrators/"+id+"/invitation", e.superKey, "", 409, "scim_enabled")
		if st, _ := e.do("GET", "/api/v1/administrators/"+id, e.adminKey, ""); st != 200 {
			t.Fatalf("reads stay open: %d", st)
		}
		// The IdP deactivates through SCIM.
		st, u := e.do("PATCH", "/scim/v2/Users/"+id, e.scimToken,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
		if st != 200 || u["active"] != false {
			t.Fatalf("SCIM deactivate = %d %v", st, u)
		}
		if st, o := e.do("PATCH", "/api/v1/organization", e.superKey, `{"scimEnabled":false}`); st != 200 || o["scimEnabled"] != false {
			t.Fatalf("SCIM off = %d %v", st, o)
		}
		if st, _ := e.do("GET", "/scim/v2/Users/"+id, e.scimToken, ""); st != 403 {
			t.Fatalf("SCIM after off = %d, want 403", st)
		}
		// The IdP claimed the account (it signs in through SSO now):
		// reactivated, it is Active, not back to Pending.
		if st, a := e.do("POST", "/api/v1/administrators/"+id+"/reactivate", e.superKey, ""); st != 200 || a["status"] != "Active" {
			t.Fatalf("manual reactivate after SCIM off = %d %v", st, a)
		}
		// The audit log names who did what.
		_, log := e.do("GET", "/api/v1/audit?action=organization.update", e.adminKey, "")
		var toggles []string
		for _, it := range log["items"].([]any) {
			en := it.(map[string]any)
			toggles = append(toggles, en["actorKind"].(string)+":"+en["actorName"].(string)+" "+string(mustJSON(t, en["after"])))
		}
		want := []string{`api_key:super {"scimEnabled":false}`, `api_key:super {"scimEnabled":true}`}
		if !slices.Equal(toggles, want) {
			t.Fatalf("toggles = %v, want %v", toggles, want)
		}
		_, log = e.do("GET", "/api/v1/audit?target="+id+"&limit=1&action=administrator.", e.adminKey, "")
		items := log["items"].([]any)
		if len(items) != 1 || log["nextBefore"] == nil {
			t.Fatalf("audit page = %v", log)
		}
		// Older: the SCIM deactivation, by the token.
		_, log = e.do("GET", "/api/v1/audit?target="+id+"&action=administrator.&before="+jsonNumber(log["nextBefore"]), e.adminKey, "")
		first := log["items"].([]any)[0].(map[string]any)
		if first["actorKind"] != "scim" || !strings.Contains(string(mustJSON(t, first["after"])), `"status":"Deactivated"`) {
			t.Fatalf("SCIM deactivation entry = %v", first)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSuperAdminGroupOverTheAPI: PATCH /organization designates the
// Super Administrator group (Super Administrators only), GET shows it,
// and an empty name designates none.
func TestSuperAdminGroupOverTheAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.refused("PATCH", "/api/v1/organization", e.adminKey, `{"scimSuperAdminGroup":"Admins"}`, 403, "forbidden")
		e.refused("PATCH", "/api/v1/organization", e.superKey, `{"scimSuperAdminGroup":"Admins\u0007"}`, 400, "invalid_name")
		if st, o := e.do("PATCH", "/api/v1/organization", e.superKey, `{"scimSuperAdminGroup":"Gatehouse Admins"}`); st != 200 || o["scimSuperAdminGroup"] != "Gatehouse Admins" {
			t.Fatalf("designate = %d %v", st, o)
		}
		if st, o := e.do("GET", "/api/v1/organization", e.adminKey, ""); st != 200 || o["scimSuperAdminGroup"] != "Gatehouse Admins" {
			t.Fatalf("read = %d %v", st, o)
		}
		if st, o := e.do("PATCH", "/api/v1/organization", e.superKey, `{"scimSuperAdminGroup":""}`); st != 200 || o["scimSuperAdminGroup"] != "" {
			t.Fatalf("designate none = %d %v", st, o)
		}
		// The SCIM tokens' rule holds over the API as before.
		e.refused("POST", "/api/v1/scim/tokens", e.adminKey, `{"description":"mine"}`, 403, "forbidden")
		e.refused("GET", "/api/v1/scim/tokens", e.adminKey, "", 403, "forbidden")
		e.refused("POST", "/api/v1/scim/tokens", e.superKey, `{"expiresInDays":3651}`, 400, "invalid_expiry")
	})
}
