package sso

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse/admin"
	"gatehouse/admin/web"
	"gatehouse/sso/protocol"
	"gatehouse/store"
	"gatehouse/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// fakeIdP is a protocol.Connector whose "identity provider" is the test: Start
// redirects to /fake-idp with the request id, and Finish believes the
// username in the callback's form, once per request and browser.
type fakeIdP struct{ st store.Store }

func (f fakeIdP) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, req protocol.StartRequest) error {
	id := randomToken(10)
	conn := r.PathValue("connection")
	if conn == "" { // from /login: the test's only connection
		conn = r.Header.Get("X-Test-Connection")
	}
	if _, err := f.st.CreateSSORequest(ctx, store.SSORequest{ID: id, ConnectionID: conn, OrgID: r.Header.Get("X-Test-Org"),
		Browser: req.Browser, RedirectTo: req.RedirectTo, Test: req.Test, ExpiresAt: time.Now().Add(protocol.RequestTTL)}); err != nil {
		return err
	}
	http.Redirect(w, r, "/fake-idp?state="+id+"&hint="+url.QueryEscape(req.LoginHint), http.StatusFound)
	return nil
}

func (f fakeIdP) Finish(ctx context.Context, r *http.Request, browser []byte) (protocol.Identity, store.SSORequest, error) {
	req, err := f.st.UseSSORequest(ctx, r.FormValue("state"), r.PathValue("connection"), browser, time.Now())
	if err != nil {
		return protocol.Identity{}, store.SSORequest{}, protocol.Refuse(err, "unknown, used or foreign request")
	}
	return protocol.Identity{Username: r.FormValue("username"), Subject: "sub-" + r.FormValue("username"), Issuer: "https://fake.idp",
		Attributes: map[string][]string{"email": {"x@acme.test"}}}, req, nil
}

type flowEnv struct {
	t      *testing.T
	s      *store.SQL
	srv    *httptest.Server
	org    store.Org
	conn   store.SSOConnection
	alice  store.Administrator
	signIn *admin.SignIn
}

func newFlowEnv(t *testing.T) *flowEnv {
	ctx := storetest.Context(context.Background())
	s := storetest.SQLite(t)
	org, owner, _, err := (&admin.Orgs{Store: s, BaseURL: "http://x"}).Create(ctx, admin.OrgSpec{Slug: "acme", Name: "Acme",
		Domains: []string{"acme.test"}, Owner: admin.OwnerSpec{UserName: "owner", Email: "owner@acme.test", GivenName: "O", FamilyName: "O"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateAdministrator(ctx, org.ID, owner.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Status = store.StatusActive; return nil }); err != nil {
		t.Fatal(err)
	}
	alice, err := s.CreateAdministrator(ctx, store.Administrator{OrgID: org.ID, UserName: "alice", Email: "alice@acme.test", GivenName: "A",
		FamilyName: "A", Role: store.RoleAdministrator, Status: store.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.CreateSSOConnection(ctx, store.SSOConnection{OrgID: org.ID, Kind: store.SSOSAML, Name: "Fake", Enabled: true,
		UsernameFrom: "nameid", Config: store.RawJSON(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, admin.SecretKeySize)
	rand.Read(key)
	sealer, _ := admin.NewSealer(key)
	signIn := &admin.SignIn{Store: s, Sealer: sealer}
	mux := http.NewServeMux()
	flow := &Flow{Store: s, SignIn: signIn, BaseURL: "http://127.0.0.1",
		New:      func(context.Context, store.SSOConnection) (protocol.Connector, error) { return fakeIdP{s}, nil },
		Metadata: func(store.SSOConnection) ([]byte, error) { return []byte("<md/>"), nil }}
	flow.Register(mux)
	// The fake IdP "authenticates" whoever the test says and posts back.
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &flowEnv{t: t, s: s, srv: srv, org: org, conn: conn, alice: alice, signIn: signIn}
}

// browserClient is a browser: cookies kept, redirects not followed.
func (e *flowEnv) browserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn runs an SP-initiated sign-in in c through the fake IdP, which
// asserts username; it returns the ACS's response.
func (e *flowEnv) signInAs(c *http.Client, username, next string, test bool) (*http.Response, string) {
	e.t.Helper()
	u := e.srv.URL + "/sso/start/" + e.conn.ID + "?next=" + url.QueryEscape(next)
	if test {
		u += "&test=1"
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Test-Org", e.org.ID)
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		e.t.Fatalf("start: %d", res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	return e.post(c, "/sso/saml/"+e.conn.ID+"/acs", url.Values{"state": {loc.Query().Get("state")}, "username": {username}})
}

func (e *flowEnv) post(c *http.Client, path string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	res, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func sessionCookie(res *http.Response) string {
	for _, c := range res.Cookies() {
		if c.Name == web.SessionCookie && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

func TestSSOExactUsername(t *testing.T) {
	e := newFlowEnv(t)
	ctx := storetest.Context(context.Background())
	// "Alice" never signs in as "alice"; the browser sees a reference
	// only, the audit log the near miss.
	res, body := e.signInAs(e.browserClient(), "Alice", "/", false)
	if res.StatusCode != http.StatusForbidden || sessionCookie(res) != "" || strings.Contains(body, "alice") || strings.Contains(body, "Alice") {
		t.Fatalf("Alice: %d %q", res.StatusCode, body)
	}
	i := strings.Index(body, "<code>")
	ref := body[i+6 : i+6+strings.Index(body[i+6:], "<")]
	log, _ := e.s.AuditLog(ctx, e.org.ID, store.AuditQuery{Action: store.AuditSignInFailure})
	if len(log) != 1 || !strings.Contains(string(log[0].After), ref) ||
		!strings.Contains(string(log[0].After), `the identity provider sent \"Alice\"; usernames are case-sensitive; \"alice\" exists`) {
		t.Fatalf("reference %q, audit %+v", ref, log)
	}
	for _, bad := range []string{" alice", "alice ", "", "alice\u200b", "ALICE"} {
		if res, _ := e.signInAs(e.browserClient(), bad, "/", false); res.StatusCode != http.StatusForbidden || sessionCookie(res) != "" {
			t.Fatalf("%q signed in: %d", bad, res.StatusCode)
		}
	}
	// The exact username signs in: a session, history, last login, and a
	// relative landing only.
	for next, want := range map[string]string{"/console/admins?x=1": "/console/admins?x=1", "https://evil.test/": "/", "//evil.test": "/",
		"/\\evil.test": "/", "javascript:alert(1)": "/"} {
		res, _ := e.signInAs(e.browserClient(), "alice", next, false)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want || sessionCookie(res) == "" {
			t.Fatalf("next %q: %d to %q", next, res.StatusCode, res.Header.Get("Location"))
		}
		if _, a, err := e.signIn.Authenticate(ctx, sessionCookie(res)); err != nil || a.ID != e.alice.ID || a.LastLoginAt == nil {
			t.Fatalf("session of the SSO sign-in: %+v %v", a, err)
		}
	}
	hist, _ := e.s.LoginHistory(ctx, e.org.ID, e.alice.ID, 10, 0)
	if len(hist) == 0 || hist[0].Method != store.SignInSAML || hist[0].Result != store.LoginSuccess || hist[0].IP != "127.0.0.1" {
		t.Fatalf("history %+v", hist)
	}
}

func TestSSOBrowserBindingAndReplay(t *testing.T) {
	e := newFlowEnv(t)
	c := e.browserClient()
	req, _ := http.NewRequest("GET", e.srv.URL+"/sso/start/"+e.conn.ID, nil)
	req.Header.Set("X-Test-Org", e.org.ID)
	res, _ := c.Do(req)
	loc, _ := url.Parse(res.Header.Get("Location"))
	form := url.Values{"state": {loc.Query().Get("state")}, "username": {"alice"}}
	// Another browser cannot finish it.
	if res, _ := e.post(e.browserClient(), "/sso/saml/"+e.conn.ID+"/acs", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("another browser: %d", res.StatusCode)
	}
	if res, _ := e.post(c, "/sso/saml/"+e.conn.ID+"/acs", form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the browser: %d", res.StatusCode)
	}
	if res, _ := e.post(c, "/sso/saml/"+e.conn.ID+"/acs", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("replay: %d", res.StatusCode)
	}
}

func TestSSOStatusesAndDisabled(t *testing.T) {
	e := newFlowEnv(t)
	ctx := storetest.Context(context.Background())
	for _, st := range []store.Status{store.StatusPending, store.StatusDeactivated} {
		if _, err := e.s.UpdateAdministrator(ctx, e.org.ID, e.alice.ID, store.FlagMissingSuper, func(a *store.Administrator) error { a.Status = st; return nil }); err != nil {
			t.Fatal(err)
		}
		if res, _ := e.signInAs(e.browserClient(), "alice", "/", false); res.StatusCode != http.StatusForbidden || sessionCookie(res) != "" {
			t.Fatalf("%s administrator signed in: %d", st, res.StatusCode)
		}
	}
	hist, _ := e.s.LoginHistory(ctx, e.org.ID, e.alice.ID, 10, 0)
	if len(hist) != 2 || hist[0].Result != store.LoginDeactivated || hist[1].Result != store.LoginPending {
		t.Fatalf("history %+v", hist)
	}
	// A disabled connection neither starts nor signs in.
	if _, err := e.s.UpdateSSOConnection(ctx, e.org.ID, e.conn.ID, func(c *store.SSOConnection) error { c.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	res, err := e.browserClient().Get(e.srv.URL + "/sso/start/" + e.conn.ID)
	if err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("start of a disabled connection: %v %v", res.StatusCode, err)
	}
}

func TestSSOTestConnection(t *testing.T) {
	e := newFlowEnv(t)
	ctx := storetest.Context(context.Background())
	// Only a Super Administrator of the organization may test.
	c := e.browserClient()
	req, _ := http.NewRequest("GET", e.srv.URL+"/sso/start/"+e.conn.ID+"?test=1", nil)
	if res, _ := c.Do(req); res.StatusCode != http.StatusForbidden {
		t.Fatalf("test without a session: %d", res.StatusCode)
	}
	owner, _ := e.s.AdministratorByUsername(ctx, e.org.ID, "owner")
	res, err := e.signIn.SSO(ctx, owner, store.SignInSAML, "127.0.0.1", "t")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookie, Value: res.Token, Path: "/"}})
	before, _ := e.s.LoginHistory(ctx, e.org.ID, e.alice.ID, 10, 0)
	resp, body := e.signInAs(c, "Alice", "/", true)
	if resp.StatusCode != 200 || sessionCookie(resp) != "" || !strings.Contains(body, "usernames are case-sensitive") || !strings.Contains(body, "x@acme.test") {
		t.Fatalf("test page: %d %s", resp.StatusCode, body)
	}
	resp, body = e.signInAs(c, "alice", "/", true)
	if resp.StatusCode != 200 || sessionCookie(resp) != "" || !strings.Contains(body, "Matched administrator <code>alice</code>") {
		t.Fatalf("test page: %d %s", resp.StatusCode, body)
	}
	after, _ := e.s.LoginHistory(ctx, e.org.ID, e.alice.ID, 10, 0)
	if len(after) != len(before) {
		t.Fatal("a test sign-in was recorded as a sign-in")
	}
}

func TestLoginForms(t *testing.T) {
	e := newFlowEnv(t)
	c := e.browserClient()
	// username@slug or an address of the organization's domain (it has
	// SSO) sends the browser to its IdP, whatever the username; nothing
	// else names an organization: the password form, asking for it.
	post := func(path string, form url.Values, h map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Test-Org", e.org.ID)
		req.Header.Set("X-Test-Connection", e.conn.ID)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, name := range []string{"alice@acme", "nobody@acme", "anyone@acme.test", "ALICE@ACME.TEST"} {
		if res, _ := post("/login", url.Values{"username": {name}}, nil); res.StatusCode != http.StatusFound ||
			!strings.HasPrefix(res.Header.Get("Location"), "/fake-idp?") {
			t.Fatalf("%s: %d %q", name, res.StatusCode, res.Header.Get("Location"))
		}
	}
	for _, name := range []string{"alice", "nobody", "x@elsewhere.test", "alice@nope"} {
		if res, body := post("/login", url.Values{"username": {name}}, nil); res.StatusCode != 200 || !strings.Contains(body, `name="password"`) ||
			!strings.Contains(body, `<label for="o">Organization</label>`) {
			t.Fatalf("%s: %d %s", name, res.StatusCode, body)
		}
	}
	// Login CSRF: a cross-site post of either form is refused.
	for _, path := range []string{"/login", "/login/password"} {
		if res, _ := post(path, url.Values{"username": {"alice"}, "password": {"x"}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); res.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site %s: %d", path, res.StatusCode)
		}
	}
	// The password form: a session and a relative landing.
	owner, _ := e.s.AdministratorByUsername(context.Background(), e.org.ID, "owner")
	if err := e.signIn.SetPassword(storetest.Context(context.Background()), e.org.ID, owner.ID, "a long enough password", false); err != nil {
		t.Fatal(err)
	}
	if res, body := post("/login/password", url.Values{"username": {"owner@acme"}, "password": {"wrong password!!"}}, nil); res.StatusCode != 401 ||
		!strings.Contains(body, "msg") {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	res, _ := post("/login/password", url.Values{"organization": {"acme"}, "username": {"owner"}, "password": {"a long enough password"}, "next": {"https://evil.test"}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" || sessionCookie(res) == "" {
		t.Fatalf("password sign-in: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestMatch(t *testing.T) {
	e := newFlowEnv(t)
	ctx := storetest.Context(context.Background())
	if a, err := Match(ctx, e.s, e.org.ID, "alice"); err != nil || a.ID != e.alice.ID {
		t.Fatalf("exact: %v", err)
	}
	other, _, _, _ := (&admin.Orgs{Store: e.s, BaseURL: "http://x"}).Create(ctx, admin.OrgSpec{Slug: "other", Name: "Other",
		Owner: admin.OwnerSpec{UserName: "bob", Email: "bob@o.test", GivenName: "B", FamilyName: "B"}})
	for _, tc := range []struct{ org, name, reason, near string }{
		{e.org.ID, "Alice", `usernames are case-sensitive; "alice" exists`, "alice"},
		{e.org.ID, " alice", `with white space around it; usernames match exactly; "alice" exists`, "alice"},
		{e.org.ID, "", "empty username", ""},
		{e.org.ID, "carol", "no administrator of the organization", ""},
		{other.ID, "alice", "no administrator of the organization", ""}, // another organization's username
	} {
		_, err := Match(ctx, e.s, tc.org, tc.name)
		var refused *protocol.Error
		if !errors.As(err, &refused) || !strings.Contains(refused.Reason, tc.reason) {
			t.Errorf("Match(%q) = %v, want a refusal saying %q", tc.name, err, tc.reason)
		}
		// A near miss names the existing username for the test page.
		var near *NearMiss
		if got := ""; errors.As(err, &near) && near.Sent == tc.name {
			got = near.Existing
			if got != tc.near {
				t.Errorf("Match(%q): near miss %q, want %q", tc.name, got, tc.near)
			}
		} else if tc.near != "" {
			t.Errorf("Match(%q) = %v, want a near miss naming %q", tc.name, err, tc.near)
		}
	}
}
